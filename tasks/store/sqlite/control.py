"""Leases and control calls of SQLite: renew, release, cancel, retry, purge.

Reclaiming the leases of dead owners is in :mod:`~tasks.store.sqlite.workers`.

Each function takes the plain ``sqlite3`` connection first and runs inside
a group-commit transaction as a ``call`` request (the store binds the other
arguments). The clock is read in the function, inside the transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from tasks.model import TaskRecord
from tasks.store.queries import load_queries
from tasks.store.rows import COLUMNS, record_from_row
from tasks.store.sqlite.binding import chunks, marks

_SQL = load_queries("sqlite")
_SELECT_ONE = _SQL["get"].format(columns=COLUMNS)


def renew_leases(
    conn: sqlite3.Connection, owner: str, ids: Sequence[str], lease_seconds: float
) -> set[str]:
    """Extend ``owner``'s leases on ``ids``; the ids it no longer holds."""
    kept: set[str] = set()
    expires = time.time() + lease_seconds
    for chunk in chunks(ids):
        rows = conn.execute(
            _SQL["renew"].format(marks=marks(chunk)), (expires, *chunk, owner)
        ).fetchall()
        kept.update(row[0] for row in rows)
    return set(ids) - kept


def release(conn: sqlite3.Connection, owner: str, ids: Sequence[str]) -> int:
    """Give ``owner``'s tasks back (cancelling ones end cancelled); how many were."""
    count = 0
    for chunk in chunks(ids):
        rows = conn.execute(
            _SQL["release"].format(marks=marks(chunk)), (time.time(), *chunk, owner)
        ).fetchall()
        count += len(rows)
    return count


def cancel(conn: sqlite3.Connection, task_id: str) -> TaskRecord | None:
    """Cancel a queued task, ask a running one to stop; the task as it is then."""
    conn.execute(_SQL["cancel"], (time.time(), task_id))
    return _select_one(conn, task_id)


def retry(conn: sqlite3.Connection, task_id: str) -> TaskRecord | None:
    """Requeue a failed or cancelled task from scratch; the task as it is then."""
    conn.execute(_SQL["retry"], (time.time(), task_id))
    return _select_one(conn, task_id)


def purge_finished(
    conn: sqlite3.Connection, finished_before: float, limit: int, states: Sequence[str]
) -> int:
    """Delete up to ``limit`` tasks in ``states`` that finished before ``finished_before``."""
    sql = _SQL["purge"].format(marks=", ".join("?" * len(states)))
    return len(conn.execute(sql, (*states, finished_before, limit)).fetchall())


def _select_one(conn: sqlite3.Connection, task_id: str) -> TaskRecord | None:
    rows = conn.execute(_SELECT_ONE, (task_id,)).fetchall()
    return record_from_row(rows[0]) if rows else None
