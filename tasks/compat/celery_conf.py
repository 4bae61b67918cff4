"""Celery's settings on :class:`~tasks.compat.CeleryTasks`: ``conf.task_always_eager``,
``conf.beat_schedule`` and ``conf.timezone``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasks.compat.celery_beat import apply_beat_schedule
from tasks.testing import Eager

if TYPE_CHECKING:
    from tasks.extension import Tasks


class CeleryConf:
    """Celery's ``task_always_eager`` and ``task_eager_propagates`` settings.

    With ``task_always_eager`` on, every enqueue of the :class:`~tasks.Tasks`
    runs its task at once, inline (the eager mode of :mod:`tasks.testing`),
    and results and states are read from that mode, as Celery's
    ``EagerResult`` holds them. ``task_eager_propagates`` makes a failing task
    raise from ``delay()`` itself. Set them before the enqueues they govern.
    """

    def __init__(self, tasks: Tasks, always_eager: bool, propagates: bool) -> None:
        self._tasks = tasks
        self.timezone = "UTC"
        """Celery's ``timezone``: the zone of ``crontab`` entries in :attr:`beat_schedule`."""
        self._beat: dict[str, Any] = {}
        self._mode: Eager | None = None
        self._propagates = propagates
        self.task_always_eager = always_eager

    @property
    def task_always_eager(self) -> bool:
        """Whether enqueues run their task at once (tests only)."""
        return self._mode is not None

    @task_always_eager.setter
    def task_always_eager(self, value: bool) -> None:
        if value and self._mode is None:
            if self._tasks.test_mode is not None:
                raise RuntimeError("another test mode is already active on these tasks")
            self._mode = Eager(self._tasks, propagate=self._propagates)
            self._tasks.test_mode = self._mode
        elif not value and self._mode is not None:
            if self._tasks.test_mode is self._mode:
                self._tasks.test_mode = None
            self._mode = None

    @property
    def task_eager_propagates(self) -> bool:
        """Whether an eager task's exception is raised from the enqueue."""
        return self._propagates

    @task_eager_propagates.setter
    def task_eager_propagates(self, value: bool) -> None:
        self._propagates = value
        if self._mode is not None:
            self._mode.propagate = value

    @property
    def beat_schedule(self) -> dict[str, Any]:
        """Celery's ``beat_schedule``; setting it declares each entry as a schedule.

        See :mod:`tasks.compat.celery_beat`. Set ``timezone`` first; set it once.
        """
        return dict(self._beat)

    @beat_schedule.setter
    def beat_schedule(self, entries: dict[str, Any]) -> None:
        apply_beat_schedule(self._tasks, entries, self.timezone)
        self._beat = dict(entries)
