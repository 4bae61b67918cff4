"""Leases and control calls of PostgreSQL: renew, release, cancel, retry, purge.

Reclaiming the leases of dead owners is in :mod:`~tasks.store.postgres.workers`.

Each coroutine function takes the batch's :class:`~tasks.store.postgres.writes.Tx`
first and runs inside a group-commit transaction as a ``call`` request (the
store binds the other arguments). It uses the transaction's clock and sets
``tx.notify`` when it made work due.
"""

from __future__ import annotations

from tasks.model import TaskRecord
from tasks.store.postgres.connection import Connection
from tasks.store.postgres.writes import WAITED, Tx
from tasks.store.queries import load_queries
from tasks.store.rows import COLUMNS, record_from_row

_SQL = load_queries("postgres")
_RENEW = _SQL["renew"].format(waited=WAITED)
_SELECT_ONE = _SQL["get"].format(columns=COLUMNS)


async def renew_leases(tx: Tx, owner: str, ids: list[str], lease_seconds: float) -> set[str]:
    """Extend ``owner``'s leases on ``ids``; the ids it no longer holds."""
    rows = await tx.conn.fetch(_RENEW, tx.now + lease_seconds, ids, owner)
    return set(ids) - {row[0] for row in rows}


async def release(tx: Tx, owner: str, ids: list[str]) -> int:
    """Give ``owner``'s tasks back (cancelling ones end cancelled); how many were."""
    rows = await tx.conn.fetch(_SQL["release"], ids, owner, tx.now)
    tx.notify = tx.notify or bool(rows)
    return len(rows)


async def cancel(tx: Tx, task_id: str) -> TaskRecord | None:
    """Cancel a queued task, ask a running one to stop; the task as it is then."""
    await tx.conn.execute(_SQL["cancel"], tx.now, task_id)
    return await _select_one(tx.conn, task_id)


async def retry(tx: Tx, task_id: str) -> TaskRecord | None:
    """Requeue a failed or cancelled task from scratch; the task as it is then."""
    applied = await tx.conn.fetchval(_SQL["retry"], tx.now, task_id)
    tx.notify = tx.notify or applied is not None
    return await _select_one(tx.conn, task_id)


async def purge_finished(tx: Tx, finished_before: float, limit: int, states: list[str]) -> int:
    """Delete up to ``limit`` tasks in ``states`` that finished before ``finished_before``."""
    status: str = await tx.conn.execute(_SQL["purge"], finished_before, limit, states)
    return int(status.split()[-1])  # "DELETE <count>"


async def _select_one(conn: Connection, task_id: str) -> TaskRecord | None:
    row = await conn.fetchrow(_SELECT_ONE, task_id)
    return None if row is None else record_from_row(row)
