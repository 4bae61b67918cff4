"""One group-commit batch as one SQLite transaction, in one call on the writer's thread.

:func:`run_transaction` is a plain ``sqlite3`` function: the store runs it
with :func:`~tasks.store.sqlite.connection.on_connection_thread`, so
``BEGIN IMMEDIATE``, every statement and ``COMMIT`` cost one round trip to
the writer's aiosqlite thread. It answers every request of the batch, or
raises and commits none of them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from tasks.model import State
from tasks.store.batching import RequestFailed, WriteRequest
from tasks.store.sqlite import claims, writes

INLINE_ROWS = 32
"""A batch touching at most this many rows may run on the event loop's thread."""


def run_transaction(
    conn: sqlite3.Connection,
    batch: Sequence[WriteRequest],
    check_files: Callable[[], None],
    *,
    begun: bool = False,
) -> list[Any]:
    """One batch as one ``BEGIN IMMEDIATE`` transaction (already begun if ``begun``).

    The batch's clock (leases, ``started_at``, ``finished_at``) is read once
    the write lock is held: ``BEGIN IMMEDIATE`` may wait seconds for another
    writer, and a lease stamped before that wait would already be running out.

    The requests are first applied together. If one of them fails by itself
    (:func:`request_error`), the batch is rolled back and applied again one
    request at a time, each in a savepoint: the failing requests get
    :class:`RequestFailed`, the others commit. Any other error fails the
    whole batch, as does ``check_files`` raising (the file is not the one opened).
    """
    if not begun:
        conn.execute("BEGIN IMMEDIATE")
    try:
        check_files()
        try:
            results = _apply(conn, batch, time.time())
        except Exception as exc:
            if len(batch) == 1 or not request_error(exc):
                raise
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            results = _apply_each(conn, batch, time.time())
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return results


def _apply_each(conn: sqlite3.Connection, batch: Sequence[WriteRequest], now: float) -> list[Any]:
    """Apply requests one at a time, each in a savepoint; see :func:`run_transaction`."""
    results: list[Any] = []
    for request in batch:
        conn.execute("SAVEPOINT request")
        try:
            [result] = _apply(conn, [request], now)
        except Exception as exc:
            if not request_error(exc):
                raise
            conn.execute("ROLLBACK TO request")
            result = RequestFailed(exc)
        conn.execute("RELEASE request")
        results.append(result)
    return results


def request_error(exc: BaseException) -> bool:
    """Whether ``exc`` is about one request's values, not the database as a whole.

    A refused value (constraint, binding, encoding, overflow) or a store
    error raised for one request is; a locked, full, failing or corrupt
    database (``OperationalError`` and the other database-wide errors) is not.
    """
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.InterfaceError):
        return True
    return isinstance(exc, Exception) and not isinstance(exc, sqlite3.Error)


def _apply(conn: sqlite3.Connection, batch: Sequence[WriteRequest], now: float) -> list[Any]:
    """Apply a batch: inserts, then finishes and progress, then other calls, then claims.

    Claims come last so that tasks inserted and slots freed in this very
    transaction are seen by them. A ``call`` request's payload is a function
    of the connection (see :mod:`~tasks.store.sqlite.control`).
    """
    results: list[Any] = [None] * len(batch)
    by_kind: dict[str, list[int]] = {}
    for index, request in enumerate(batch):
        by_kind.setdefault(request.kind, []).append(index)
    if "insert" in by_kind:
        writes.apply_inserts(conn, batch, by_kind["insert"], results)
    if "finish" in by_kind:
        writes.apply_finishes(conn, batch, by_kind["finish"], results, now)
    if "progress" in by_kind:
        writes.apply_progress(conn, (batch[i].payload for i in by_kind["progress"]))
    for index in by_kind.get("call", ()):
        results[index] = batch[index].payload(conn)
    for index in by_kind.get("claim", ()):
        results[index] = claims.claim(conn, *batch[index].payload, now=now)
    return results


def inline_size(batch: Sequence[WriteRequest]) -> bool:
    """Whether ``batch`` is small enough to run on the event loop's thread.

    Rows inserted, finished and progressed, plus each claim's limit; a
    ``call`` (reclaims, purges: unbounded work) never runs there.
    """
    rows = 0
    for request in batch:
        kind, payload = request.kind, request.payload
        if kind == "call":
            return False
        if kind == "insert":
            rows += len(payload[0])
        elif kind == "finish":
            rows += len(payload)
        elif kind == "claim":
            rows += payload[2]
        else:
            rows += 1
        if rows > INLINE_ROWS:
            return False
    return True


def work_for_others(batch: Sequence[WriteRequest], results: Sequence[Any], now: float) -> bool:
    """Whether this committed batch made work due that other processes may claim.

    Inserted tasks due by ``now`` count unless a claim of the same batch took
    every due task of their queue (it came back short of its limit); so do
    requeued outcomes due now and ``call`` requests marked ``wakes`` (release,
    reclaim, retry, a schedule's tasks).
    """
    drained: set[str] = set()
    for request, result in zip(batch, results, strict=True):
        if request.kind == "claim" and not isinstance(result, RequestFailed):
            queues, limit = request.payload[1], request.payload[2]  # (owner, queues, limit, ...)
            records = getattr(result, "records", result)  # a list, or a result holding one
            if len(records) < limit:
                drained.update(queues)
    for request, result in zip(batch, results, strict=True):
        if isinstance(result, RequestFailed):
            continue
        kind, payload = request.kind, request.payload
        if kind == "insert":
            for task, answer in zip(payload[0], result, strict=True):
                if answer.created and task.run_at <= now and task.queue not in drained:
                    return True
        elif kind == "finish":
            for change, applied in zip(payload, result, strict=True):
                due = change.run_at is None or change.run_at <= now
                if applied and change.state is State.QUEUED and due:
                    return True
                if applied and change.workflow_step and change.state is not State.QUEUED:
                    return True
        elif kind == "call" and getattr(payload, "wakes", False):
            return True
    return False
