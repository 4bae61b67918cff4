"""Running the schedules: every process with workers fires the due slots, once each.

See :mod:`tasks.schedules` for what a schedule and a slot are and why each
slot's task is inserted exactly once whichever processes fire it. This module
holds the app's schedules (:class:`Schedules`) and the loop that fires them
(:func:`run_schedules`): it reads the stored state of every schedule (latest
slot fired, paused), fires what is due, and sleeps until the next slot, or at
most :data:`RECHECK` seconds, so a pause or resume made by another process is
seen.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.errors import ConfigurationError, ScheduleNotFoundError, UnknownTaskError
from tasks.events import TaskEvent
from tasks.model import NewTask, new_id
from tasks.schedules import Schedule, iso
from tasks.serialization import dumps

if TYPE_CHECKING:
    from tasks.registry import Task
    from tasks.runtime import Runtime
    from tasks.store.base import ScheduleState, Store

log = logging.getLogger("tasks")

RECHECK = 10.0
"""Longest sleep of the loop: how soon a pause or resume from elsewhere takes effect."""


class Schedules:
    """The schedules declared in code for one :class:`~tasks.Tasks`, by name."""

    def __init__(self, registry: dict[str, Task[..., Any]]) -> None:
        self._registry = registry
        self.by_name: dict[str, Schedule] = {}

    def add(self, schedule: Schedule) -> Schedule:
        """Declare a schedule (its task may be registered later: see :meth:`check`)."""
        if schedule.name in self.by_name:
            raise ConfigurationError(f"a schedule named {schedule.name!r} is already declared")
        if schedule.task_name in self._registry:
            self._check(schedule)
        self.by_name[schedule.name] = schedule
        return schedule

    def check(self) -> None:
        """Raise if a schedule's task is not registered or its arguments do not bind.

        Called when the app starts, so a typo in a schedule stops the start
        with a clear message instead of failing at every slot.
        """
        for schedule in self:
            self._check(schedule)

    def _check(self, schedule: Schedule) -> None:
        task = self._registry.get(schedule.task_name)
        if task is None:
            raise UnknownTaskError(
                f"schedule {schedule.name!r} runs {schedule.task_name!r}, which is not registered"
            )
        task.check_arguments(schedule.args, schedule.kwargs)

    def __iter__(self) -> Any:
        return iter(self.by_name.values())

    def __len__(self) -> int:
        return len(self.by_name)


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """A schedule with its stored state, as the API shows it."""

    schedule: Schedule
    state: ScheduleState | None

    def to_dict(self, now: float) -> dict[str, Any]:
        """A JSON-ready view: what, when, whether paused, last and next slot."""
        schedule, state = self.schedule, self.state
        paused = state is not None and state.paused
        return {
            "name": schedule.name,
            "task": schedule.task_name,
            "cron": schedule.cron,
            "every": schedule.every,
            "tz": schedule.tz,
            "args": list(schedule.args),
            "kwargs": schedule.kwargs,
            "missed": schedule.missed,
            "paused": paused,
            "last_slot": iso(None if state is None else state.last_slot),
            "next_slot": None if paused else iso(schedule.next_after(now)),
        }


async def views(schedules: Schedules, store: Store) -> list[ScheduleView]:
    """Every declared schedule with its stored state (None until a worker process saw it)."""
    states = await store.schedule_states()
    return [ScheduleView(s, states.get(s.name)) for s in schedules]


async def set_paused(schedules: Schedules, store: Store, name: str, paused: bool) -> ScheduleView:
    """Pause or resume a declared schedule, in the store: it holds across processes."""
    schedule = schedules.by_name.get(name)
    if schedule is None:
        raise ScheduleNotFoundError(f"no schedule named {name!r}")
    state = await store.set_schedule_paused(name, paused)
    if state is None:  # no worker process has registered it yet
        await store.register_schedules({name: schedule.latest_at_or_before(time.time())})
        state = await store.set_schedule_paused(name, paused)
    return ScheduleView(schedule, state)


async def run_schedules(rt: Runtime, schedules: Schedules) -> None:
    """Fire the due slots of ``schedules`` until cancelled; see the module docstring."""
    if not len(schedules):
        return
    registered = False
    while True:
        try:
            if not registered:  # a store down at startup is tried again each round
                now = time.time()
                first = {s.name: s.latest_at_or_before(now) for s in schedules}
                await rt.store.register_schedules(first)
                registered = True
            await fire_due(rt, schedules, time.time())
        except Exception as exc:  # the store is down: the next round tries again
            log.warning("could not fire the due schedules (will retry): %s", exc)
        now = time.time()
        upcoming = min(s.next_after(now) for s in schedules)
        await asyncio.sleep(min(max(upcoming - now, 0.0), RECHECK))


async def fire_due(rt: Runtime, schedules: Schedules, now: float) -> int:
    """Fire every due slot of every unpaused schedule; return how many tasks were created."""
    states = await rt.store.schedule_states()
    created = 0
    for schedule in schedules:
        state = states.get(schedule.name)
        if state is None or state.paused:
            continue
        slots = schedule.due(state.last_slot, now)
        if slots:
            created += await _fire(rt, schedule, slots, now)
    return created


async def _fire(rt: Runtime, schedule: Schedule, slots: list[float], now: float) -> int:
    task = rt.registry[schedule.task_name]
    args_json = dumps(list(schedule.args), f"the arguments of schedule {schedule.name}")
    kwargs_json = dumps(schedule.kwargs, f"the keyword arguments of schedule {schedule.name}")
    rows = [
        NewTask(
            id=new_id(),
            name=task.name,
            queue=task.queue,
            args_json=args_json,
            kwargs_json=kwargs_json,
            priority=task.priority,
            max_attempts=task.max_attempts or rt.config.default_max_attempts,
            run_at=slot,
            created_at=now,
            idempotency_key=schedule.key(slot),
        )
        for slot in slots
    ]
    inserted = await rt.store.fire_schedule(schedule.name, slots[-1], rows)
    fresh = [row for row, answer in zip(rows, inserted, strict=True) if answer.created]
    if fresh:
        rt.wake()
        for row in fresh:
            rt.bus.emit(TaskEvent("enqueued", row.id, row.name))
        last = iso(slots[-1])
        log.info(
            "schedule %s fired %d slot(s), up to %s (pid %d)",
            schedule.name,
            len(fresh),
            last,
            os.getpid(),
        )
    return len(fresh)
