"""Schedules in SQLite: registering, firing a slot with its task, pausing.

Each write function takes the plain ``sqlite3`` connection first and runs
inside a group-commit transaction as a ``call`` request; see
:meth:`tasks.store.base.Store.fire_schedule` for the contract.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence

from tasks.model import NewTask
from tasks.store.base import Inserted, ScheduleState
from tasks.store.queries import load_queries
from tasks.store.sqlite.writes import insert_all

_SQL = load_queries("sqlite")
STATES = _SQL["schedule_states"]


def register(conn: sqlite3.Connection, first_slots: Mapping[str, float]) -> None:
    """Record the schedules not seen before, as fired up to their first slot."""
    now = time.time()
    conn.executemany(
        _SQL["schedule_register"], [(name, slot, now) for name, slot in first_slots.items()]
    )


def fire(
    conn: sqlite3.Connection, name: str, slot: float, tasks: Sequence[NewTask]
) -> list[Inserted]:
    """Insert the slots' tasks (keyed: once each) and move the schedule to ``slot``."""
    inserted = insert_all(conn, tasks)
    conn.execute(_SQL["schedule_fired"], (slot, time.time(), name))
    return inserted


def set_paused(conn: sqlite3.Connection, name: str, paused: bool) -> ScheduleState | None:
    """Pause or resume; the schedule's state, or None if it was never recorded."""
    rows = conn.execute(_SQL["schedule_paused"], (1 if paused else 0, time.time(), name)).fetchall()
    return state(rows[0]) if rows else None


def state(row: Sequence[object]) -> ScheduleState:
    """A ``(name, last_slot, paused)`` row as a :class:`ScheduleState`."""
    name, last_slot, paused = row
    return ScheduleState(str(name), float(last_slot), bool(paused))  # type: ignore[arg-type]
