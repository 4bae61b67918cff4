"""Schedules in PostgreSQL: registering, firing a slot with its task, pausing.

Each write function takes the group-commit transaction first and runs as a
``call`` request; see :meth:`tasks.store.base.Store.fire_schedule` for the
contract. The slot's task is keyed, so concurrent firings of one slot, from
any process or host, insert it once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tasks.model import NewTask
from tasks.store.base import Inserted, ScheduleState
from tasks.store.postgres.writes import Tx, check_storable, insert_tasks
from tasks.store.queries import load_queries

_SQL = load_queries("postgres")
STATES = _SQL["schedule_states"]


async def register(tx: Tx, first_slots: Mapping[str, float]) -> None:
    """Record the schedules not seen before, as fired up to their first slot."""
    await tx.conn.execute(
        _SQL["schedule_register"], list(first_slots), list(first_slots.values()), tx.now
    )


async def fire(tx: Tx, name: str, slot: float, tasks: Sequence[NewTask]) -> list[Inserted]:
    """Insert the slots' tasks (keyed: once each) and move the schedule to ``slot``."""
    for task in tasks:
        check_storable(task)
    inserted = await insert_tasks(tx.conn, tasks)
    tx.notify = tx.notify or any(i.created for i in inserted)
    await tx.conn.execute(_SQL["schedule_fired"], slot, tx.now, name)
    return inserted


async def set_paused(tx: Tx, name: str, paused: bool) -> ScheduleState | None:
    """Pause or resume; the schedule's state, or None if it was never recorded."""
    row = await tx.conn.fetchrow(_SQL["schedule_paused"], paused, tx.now, name)
    return None if row is None else state(row)


def state(row: Sequence[object]) -> ScheduleState:
    """A ``(name, last_slot, paused)`` row as a :class:`ScheduleState`."""
    name, last_slot, paused = row
    return ScheduleState(str(name), float(last_slot), bool(paused))  # type: ignore[arg-type]
