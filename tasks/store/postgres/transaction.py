"""One group-commit batch as one PostgreSQL transaction on one pooled connection.

:func:`run_transaction` answers every request of the batch, or raises and
commits none of them. If the transaction made work due it sends
:data:`~tasks.store.postgres.notifications.NOTIFY`, delivered on commit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from tasks.store.batching import RequestFailed, WriteRequest
from tasks.store.postgres import claims, writes
from tasks.store.postgres.connection import DB_ERRORS
from tasks.store.postgres.notifications import NOTIFY
from tasks.store.postgres.writes import Tx


async def run_transaction(pool: Any, batch: Sequence[WriteRequest]) -> list[Any]:
    """Run one batch in one transaction.

    The requests are first applied together. If one of them fails by
    itself (:func:`request_error`), the transaction is rolled back and
    the batch runs again in a new one, each request in a savepoint: the
    failing requests get :class:`RequestFailed`, the others commit.
    """
    try:
        return await _transaction_once(pool, batch, each=False)
    except Exception as exc:
        if len(batch) == 1 or not request_error(exc):
            raise
    return await _transaction_once(pool, batch, each=True)


async def _transaction_once(pool: Any, batch: Sequence[WriteRequest], *, each: bool) -> list[Any]:
    async with pool.acquire() as conn, conn.transaction():
        tx = Tx(conn, time.time())
        results = await (_apply_each(tx, batch) if each else _apply(tx, batch))
        if tx.notify:
            await conn.execute(NOTIFY)  # delivered when this transaction commits
    return results


async def _apply_each(tx: Tx, batch: Sequence[WriteRequest]) -> list[Any]:
    """Apply requests one at a time, each in a savepoint; see :func:`run_transaction`."""
    results: list[Any] = []
    for request in batch:
        notify = tx.notify
        try:
            async with tx.conn.transaction():
                [result] = await _apply(tx, [request])
        except Exception as exc:
            if not request_error(exc):
                raise
            tx.notify = notify
            result = RequestFailed(exc)
        results.append(result)
    return results


async def _apply(tx: Tx, batch: Sequence[WriteRequest]) -> list[Any]:
    """Run one batch: inserts, then finishes and progress, then other calls, then claims.

    The same order as SQLite: claims come last so that tasks inserted and
    slots freed in this very transaction are seen by them. A ``call``
    request's payload is a coroutine function of the :class:`Tx` (see
    :mod:`~tasks.store.postgres.control`).
    """
    results: list[Any] = [None] * len(batch)
    by_kind: dict[str, list[int]] = {}
    for index, request in enumerate(batch):
        by_kind.setdefault(request.kind, []).append(index)
    if "insert" in by_kind:
        await writes.apply_inserts(tx, batch, by_kind["insert"], results)
    if "finish" in by_kind:
        await writes.apply_finishes(tx, batch, by_kind["finish"], results)
    if "progress" in by_kind:
        await writes.apply_progress(tx, [batch[i].payload for i in by_kind["progress"]])
    for index in by_kind.get("call", ()):
        results[index] = await batch[index].payload(tx)
    for index in by_kind.get("claim", ()):
        results[index] = await claims.apply_claim(tx, *batch[index].payload)
    return results


def request_error(exc: BaseException) -> bool:
    """Whether ``exc`` is about one request's values, not the database as a whole.

    A value the server or the driver refuses (data exceptions, constraint
    violations) or a store error raised for one request is; a lost
    connection, a timeout or any other server error is not.
    """
    if isinstance(exc, asyncpg.DataError | asyncpg.IntegrityConstraintViolationError):
        return True
    return isinstance(exc, Exception) and not isinstance(exc, DB_ERRORS)
