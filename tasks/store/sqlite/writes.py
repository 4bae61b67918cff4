"""The group-committed writes of SQLite: inserts, finishes, progress and claims.

Each function runs inside the batch's transaction, on the writer's thread
(see :mod:`~tasks.store.sqlite.transaction`), with the plain ``sqlite3``
connection, and answers the requests of its kind in ``results``. ``now`` is
the batch's clock, read once the write lock is held.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from tasks.model import Finish, NewTask, Progress
from tasks.store.base import Inserted, queue_full
from tasks.store.batching import RequestFailed, WriteRequest
from tasks.store.queries import load_queries
from tasks.store.rows import error_entry
from tasks.store.sqlite.binding import chunks, error_columns, number, text

_SQL = load_queries("sqlite")
_INSERT = _SQL["insert"]
_INSERT_KEYED = _SQL["insert_keyed"]
_SELECT_KEY = _SQL["select_key"]
_SELECT_UNIQUE = _SQL["select_unique"]
_COUNT_QUEUED = _SQL["count_queued"]
_PROGRESS = _SQL["progress"]
_FINISH_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def apply_inserts(
    conn: sqlite3.Connection, batch: Sequence[WriteRequest], indexes: list[int], results: list[Any]
) -> None:
    """Insert each request's tasks; one past its backlog bound fails alone.

    The bound (``max_queued``, 0 for none) is checked against a count made in
    this transaction, which holds the write lock: no other writer can slip
    in between the count and the insert.
    """
    queued: int | None = None
    for index in indexes:
        tasks, bound = batch[index].payload
        if bound:
            if queued is None:
                queued = conn.execute(_COUNT_QUEUED).fetchone()[0]
            if queued + len(tasks) > bound:
                results[index] = RequestFailed(queue_full(queued, bound))
                continue
        answers = insert_all(conn, tasks)
        if queued is not None:
            queued += sum(answer.created for answer in answers)
        results[index] = answers


def insert_all(conn: sqlite3.Connection, tasks: Sequence[NewTask]) -> list[Inserted]:
    """Insert ``tasks`` in the connection's transaction.

    A known idempotency key answers with that task's id; so does a unique key
    held by a queued, running or cancelling task.
    """
    answers: list[Inserted] = []
    plain: list[tuple[Any, ...]] = []
    for task in tasks:
        row = _insert_row(task)
        if task.idempotency_key is None and task.limits.unique_key is None:
            plain.append(row)
            answers.append(Inserted(task.id, True))
            continue
        # Keyed rows go one by one, in order, so that a key repeated within the
        # batch finds the row its first use inserted.
        if plain:
            conn.executemany(_INSERT, plain)
            plain = []
        if conn.execute(_INSERT_KEYED, row).fetchall():
            answers.append(Inserted(task.id, True))
        else:
            answers.append(Inserted(_existing(conn, task), False))
    if plain:
        conn.executemany(_INSERT, plain)
    return answers


def _existing(conn: sqlite3.Connection, task: NewTask) -> str:
    """The task whose idempotency key, or else active unique key, ``task`` repeats."""
    if task.idempotency_key is not None:
        found = conn.execute(_SELECT_KEY, (task.idempotency_key,)).fetchone()
        if found is not None:
            return str(found[0])
    [(existing,)] = conn.execute(_SELECT_UNIQUE, (task.limits.unique_key,)).fetchall()
    return str(existing)


def _insert_row(task: NewTask) -> tuple[Any, ...]:
    limits = task.limits
    return (
        task.id,
        task.name,
        task.queue,
        task.args_json,
        task.kwargs_json,
        task.priority,
        task.max_attempts,
        task.run_at,
        task.created_at,
        task.idempotency_key,
        task.timeout,
        limits.concurrency_key,
        limits.concurrency_limit,
        limits.rate_key,
        limits.rate_limit,
        limits.rate_period,
        limits.unique_key,
        task.trace_context,
    )


def apply_finishes(
    conn: sqlite3.Connection,
    batch: Sequence[WriteRequest],
    indexes: list[int],
    results: list[Any],
    now: float,
) -> None:
    """End runs; each request learns which of its changes applied (owner and state matched).

    Only the first outcome of one task in the batch can apply.
    """
    changes: list[Finish] = []
    seen: set[str] = set()
    for index in indexes:
        for change in batch[index].payload:
            if change.task_id not in seen:  # a second outcome of one run never applies
                seen.add(change.task_id)
                changes.append(change)
    applied: set[str] = set()
    for chunk in chunks(changes):
        params: list[Any] = [now]  # now: the first "?"
        for change in chunk:
            error_type, error_message, error_tb = error_columns(change.error)
            progress = change.progress
            stored = None  # the error as cleaned for storage, for the history entry
            if change.error is not None:
                stored = replace(
                    change.error,
                    type=error_type or "",
                    message=error_message or "",
                    traceback=error_tb,
                )
            params += (
                change.task_id,
                change.state.value,
                change.result_json,
                error_type,
                error_message,
                error_tb,
                change.run_at,
                1 if change.refund or change.snooze else 0,
                None if progress is None else number(progress.current),
                None if progress is None else number(progress.total),
                None if progress is None else text(progress.message),
                change.owner,
                error_entry(stored, now),
                1 if change.snooze else 0,
            )
        applied.update(row[0] for row in conn.execute(_finish_sql(len(chunk)), params))
    for index in indexes:
        answers = []
        for change in batch[index].payload:
            answers.append(change.task_id in applied)
            applied.discard(change.task_id)  # only its first outcome counts
        results[index] = answers


@functools.lru_cache(maxsize=64)
def _finish_sql(rows: int) -> str:
    return _SQL["finish"].format(rows=", ".join([_FINISH_ROW] * rows))


def apply_progress(conn: sqlite3.Connection, updates: Iterable[tuple[str, str, Progress]]) -> None:
    """Record progress reports ``(task_id, owner, progress)`` of running tasks."""
    conn.executemany(
        _PROGRESS,
        [
            (number(p.current), number(p.total), text(p.message), task_id, owner)
            for task_id, owner, p in updates
        ],
    )
