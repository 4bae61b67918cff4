"""One group-commit batch as one PostgreSQL transaction on the writer's connection.

:func:`run_transaction` answers every request of the batch, or raises and
commits none of them. If the transaction made work due it sends
:data:`~tasks.store.postgres.notifications.NOTIFY`, delivered on commit.

Round trips are what a lone writer waits for, so a batch costs as few as it
can: ``BEGIN``, one statement per kind of request, and ``COMMIT`` sent
together with the ``NOTIFY`` (one simple-protocol message). A batch of
plain inserts (no idempotency key, no backlog bound) is a single statement
in autocommit, its ``NOTIFY`` in the same statement: one round trip, durable
when it returns. (A lone claim is not given the same shortcut: a claim that
enforces limits is several statements under one advisory lock.)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from tasks.store.base import Inserted
from tasks.store.batching import RequestFailed, WriteRequest
from tasks.store.postgres import claims, writes
from tasks.store.postgres.connection import DB_ERRORS, Connection
from tasks.store.postgres.held import HeldLimits
from tasks.store.postgres.notifications import NOTIFY, NOTIFY_AFTER_INSERT, NOTIFY_LIMITS
from tasks.store.postgres.writes import Tx


async def run_transaction(
    conn: Connection, batch: Sequence[WriteRequest], held: HeldLimits
) -> list[Any]:
    """Run one batch in one transaction on ``conn`` (no transaction open on it).

    ``held`` is the store's hint about its limited tasks (see :mod:`.held`),
    which the batch's claims read and its finishes clear.

    The requests are first applied together. If one of them fails by
    itself (:func:`request_error`), the transaction is rolled back and
    the batch runs again in a new one, each request in a savepoint: the
    failing requests get :class:`RequestFailed`, the others commit.
    """
    try:
        if _plain_inserts(batch):
            return await _insert_statement(conn, batch)
        return await _transaction_once(conn, batch, held, each=False)
    except Exception as exc:
        if len(batch) == 1 or not request_error(exc):
            raise
    return await _transaction_once(conn, batch, held, each=True)


def _plain_inserts(batch: Sequence[WriteRequest]) -> bool:
    """Whether the batch holds only inserts of tasks without a key or a limit, with no
    backlog bound."""
    return all(
        request.kind == "insert"
        and not request.payload[1]
        and all(
            task.idempotency_key is None
            and task.limits.unique_key is None
            and not task.limits.claim_limited
            for task in request.payload[0]
        )
        for request in batch
    )


async def _insert_statement(conn: Connection, batch: Sequence[WriteRequest]) -> list[Any]:
    """Every task of the batch in one autocommitted ``INSERT``, with its ``NOTIFY``."""
    tasks = [task for request in batch for task in request.payload[0]]
    await conn.execute(NOTIFY_AFTER_INSERT, *writes.insert_columns(tasks))
    return [[Inserted(task.id, True) for task in request.payload[0]] for request in batch]


async def _transaction_once(
    conn: Connection, batch: Sequence[WriteRequest], held: HeldLimits, *, each: bool
) -> list[Any]:
    # The clock is read before BEGIN: WAITED (added to it for leases and
    # started_at) counts from the server's start of the transaction, so a
    # stamp never runs ahead of the time it was written.
    now = time.time()
    await conn.execute("BEGIN")
    try:
        tx = Tx(conn, now, held)
        results = await (_apply_each(tx, batch) if each else _apply(tx, batch))
        notify = NOTIFY_LIMITS if tx.notify_limits else NOTIFY
        await conn.execute(f"{notify}; COMMIT" if tx.notify else "COMMIT")
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            await conn.execute("ROLLBACK")
        raise
    return results


async def _apply_each(tx: Tx, batch: Sequence[WriteRequest]) -> list[Any]:
    """Apply requests one at a time, each in a savepoint; see :func:`run_transaction`."""
    results: list[Any] = []
    for request in batch:
        notify = tx.notify
        await tx.conn.execute("SAVEPOINT request")
        try:
            [result] = await _apply(tx, [request])
        except Exception as exc:
            if not request_error(exc):
                raise
            await tx.conn.execute("ROLLBACK TO SAVEPOINT request")
            tx.notify = notify
            result = RequestFailed(exc)
        await tx.conn.execute("RELEASE SAVEPOINT request")
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
