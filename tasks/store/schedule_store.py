"""The schedule methods of the stores, shared by both backends (a mixin).

A backend mixes :class:`ScheduleStore` in and provides ``_call`` (run a
function in a group-commit transaction), ``_read`` (a query) and
``_schedule_sql``: its module of schedule functions (``register``, ``fire``,
``set_paused``, ``state`` and the ``STATES`` query).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from tasks.model import NewTask
from tasks.store.base import Inserted, ScheduleState


class ScheduleStore:
    """:meth:`Store.register_schedules`, ``schedule_states``, ``fire_schedule``,
    ``set_schedule_paused``."""

    _schedule_sql: ModuleType

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    async def _read(self, sql: str, *args: Any) -> builtins.list[Any]:
        raise NotImplementedError

    async def register_schedules(self, first_slots: Mapping[str, float]) -> None:
        """Record new schedules; see :meth:`Store.register_schedules`."""
        if first_slots:
            await self._call(self._schedule_sql.register, dict(first_slots))

    async def schedule_states(self) -> dict[str, ScheduleState]:
        """Every schedule's state; see :meth:`Store.schedule_states`."""
        sql = self._schedule_sql
        return {row[0]: sql.state(row) for row in await self._read(sql.STATES)}

    async def fire_schedule(
        self, name: str, slot: float, tasks: Sequence[NewTask]
    ) -> builtins.list[Inserted]:
        """Insert a schedule's due tasks; see :meth:`Store.fire_schedule`."""
        inserted: builtins.list[Inserted] = await self._call(
            self._schedule_sql.fire, name, slot, builtins.list(tasks)
        )
        return inserted

    async def set_schedule_paused(self, name: str, paused: bool) -> ScheduleState | None:
        """Pause or resume a schedule; see :meth:`Store.set_schedule_paused`."""
        state: ScheduleState | None = await self._call(self._schedule_sql.set_paused, name, paused)
        return state
