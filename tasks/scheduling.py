"""The schedule methods of :class:`~tasks.Tasks` (a mixin, so the facade stays thin).

``periodic``/``schedule`` declare schedules in the registry of
:class:`~tasks.scheduler.Schedules`; the views, pause and resume go to the
store through :mod:`tasks.scheduler`. See :mod:`tasks.schedules` for what a
schedule fires and when.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from tasks import scheduler
from tasks.scheduler import Schedules, ScheduleView
from tasks.schedules import MAX_MISSED, MissedPolicy, Schedule, interval_seconds

if TYPE_CHECKING:
    from tasks.registry import Task
    from tasks.runtime import Runtime

P = ParamSpec("P")
R = TypeVar("R")


class ScheduleMethods:
    """Declaring periodic schedules and controlling them; mixed into :class:`~tasks.Tasks`."""

    schedules: Schedules

    @property
    def runtime(self) -> Runtime:
        raise NotImplementedError

    def periodic(
        self,
        cron: str | None = None,
        *,
        every: timedelta | float | None = None,
        tz: str = "UTC",
        name: str | None = None,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        missed: MissedPolicy = "latest",
        max_missed: int = MAX_MISSED,
    ) -> Callable[[Task[P, R]], Task[P, R]]:
        """Run the decorated task periodically: ``@tasks.periodic("*/5 * * * *")`` above
        ``@tasks.task``, or ``every=timedelta(seconds=30)``.

        Each due slot fires exactly once across every process and machine;
        see :mod:`tasks.schedules` for time zones, daylight saving and the
        missed-slot policies (``latest``, ``all``, ``skip``).
        """

        def declare(task: Task[P, R]) -> Task[P, R]:
            self.schedule(
                task,
                cron=cron,
                every=every,
                tz=tz,
                name=name,
                args=args,
                kwargs=kwargs,
                missed=missed,
                max_missed=max_missed,
            )
            return task

        return declare

    def schedule(
        self,
        task: Task[..., Any] | str,
        *,
        cron: str | None = None,
        every: timedelta | float | None = None,
        tz: str = "UTC",
        name: str | None = None,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        missed: MissedPolicy = "latest",
        max_missed: int = MAX_MISSED,
    ) -> Schedule:
        """Declare a schedule for ``task`` (a task or its name); see :meth:`periodic`."""
        task_name = task if isinstance(task, str) else task.name
        return self.add_schedule(
            Schedule(
                name=name or task_name,
                task_name=task_name,
                cron=cron,
                every=None if every is None else interval_seconds(every),
                tz=tz,
                args=tuple(args),
                kwargs=dict(kwargs or {}),
                missed=missed,
                max_missed=max_missed,
            )
        )

    def add_schedule(self, schedule: Schedule) -> Schedule:
        """Declare a prepared :class:`~tasks.schedules.Schedule`."""
        return self.schedules.add(schedule)

    async def schedule_views(self) -> builtins.list[ScheduleView]:
        """Every declared schedule with its stored state (latest slot, paused)."""
        return await scheduler.views(self.schedules, self.runtime.store)

    async def pause_schedule(self, name: str) -> ScheduleView:
        """Stop a schedule firing, in every process, until resumed (held in the store)."""
        return await scheduler.set_paused(self.schedules, self.runtime.store, name, True)

    async def resume_schedule(self, name: str) -> ScheduleView:
        """Let a paused schedule fire again; missed slots follow its policy."""
        return await scheduler.set_paused(self.schedules, self.runtime.store, name, False)
