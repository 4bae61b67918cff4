"""The group-committed writes of PostgreSQL: inserts, finishes, progress and claims.

Each ``apply_*`` function runs inside the batch's transaction (see
:mod:`~tasks.store.postgres.transaction`) on the :class:`Tx` connection,
answers the requests of its kind in ``results`` and sets :attr:`Tx.notify`
when it made work due. Text from task code is cleaned (:func:`clean`) and a
task PostgreSQL cannot store is refused before it joins a batch
(:func:`check_storable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from tasks.errors import StoreUnavailableError
from tasks.model import Finish, NewTask, Progress, State
from tasks.store.base import Inserted, queue_full
from tasks.store.batching import RequestFailed, WriteRequest
from tasks.store.postgres.connection import Connection
from tasks.store.postgres.held import HeldLimits
from tasks.store.queries import load_queries
from tasks.store.rows import error_entry

_SQL = load_queries("postgres")
_INSERT_ONE = _SQL["insert_one"]
_INSERT_MANY = _SQL["insert_many"]
_FINISH = _SQL["finish"]
_PROGRESS = _SQL["progress"]
_BACKLOG_LOCK = 0x7461736B71  # held by each insert that checks TASKS_MAX_QUEUED
WAITED = "EXTRACT(EPOCH FROM clock_timestamp() - transaction_timestamp())::float8"
"""Seconds since the transaction began, by the server's clock, as each row is written.

Added to :attr:`Tx.now` (this process's clock when the transaction began) for
leases and ``started_at``: a statement may wait for a lock, and a lease
stamped before that wait would already be running out when the claim commits.
"""


@dataclass(slots=True)
class Tx:
    """One group-commit transaction: its connection, its clock, whether to notify.

    ``now`` is read once the transaction has begun. A statement may still wait
    for a lock after that; the statements that write leases and ``started_at``
    add that wait themselves (see :data:`WAITED`).
    """

    conn: Connection
    now: float
    held: HeldLimits
    notify: bool = False
    notify_limits: bool = False
    """Notify with :data:`~.notifications.NOTIFY_LIMITS` (tasks with limits were added)."""


def clean(text: str | None) -> str | None:
    """Free text made storable: PostgreSQL text holds no NUL and no lone surrogate.

    Used for error and progress messages, which come from arbitrary task code:
    one unstorable message must not fail the whole group-commit batch.
    """
    if text is None:
        return None
    text = text.replace("\x00", "\N{REPLACEMENT CHARACTER}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def check_storable(task: NewTask) -> None:
    """Refuse, before it joins a batch, a task PostgreSQL cannot store."""
    for field in ("id", "name", "queue", "args_json", "kwargs_json", "idempotency_key"):
        value = getattr(task, field)
        if value is None:
            continue
        if "\x00" in value:
            raise ValueError(f"task {field} contains a NUL character: {value!r}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"task {field} is not valid Unicode: {value!r}") from exc


async def apply_inserts(
    tx: Tx, batch: Sequence[WriteRequest], indexes: list[int], results: list[Any]
) -> None:
    """Insert every request's tasks in one go; those past their backlog bound fail alone.

    The bound (``max_queued``, 0 for none) is checked against a count made
    under a transaction-scoped advisory lock that every bounded insert
    takes, so concurrent inserters (other processes, other hosts) cannot
    both pass the check: the bound holds exactly.
    """
    accepted: list[int] = []
    queued: int | None = None
    for index in indexes:
        tasks, bound = batch[index].payload
        if bound:
            if queued is None:
                await tx.conn.execute(_SQL["advisory_lock"], _BACKLOG_LOCK)
                queued = int(await tx.conn.fetchval(_SQL["count_queued"]))
            if queued + len(tasks) > bound:
                results[index] = RequestFailed(queue_full(queued, bound))
                continue
            queued += len(tasks)
        accepted.append(index)
    all_tasks: list[NewTask] = [t for i in accepted for t in batch[i].payload[0]]
    answers = await insert_tasks(tx.conn, all_tasks)
    tx.notify = tx.notify or any(a.created for a in answers)
    if any(a.created and t.limits.claim_limited for a, t in zip(answers, all_tasks, strict=True)):
        tx.notify_limits = True
    start = 0
    for index in accepted:
        count = len(batch[index].payload[0])
        results[index] = answers[start : start + count]
        start += count


async def insert_tasks(conn: Connection, tasks: Sequence[NewTask]) -> list[Inserted]:
    """Insert in the connection's transaction; idempotency and unique keys as in SQLite.

    Keyed tasks go one by one, in order, so the first of two tasks with one key
    wins; the others go in one statement.
    """
    answers: list[Inserted] = []
    plain: list[NewTask] = []
    for task in tasks:
        if task.idempotency_key is None and task.limits.unique_key is None:
            plain.append(task)
            answers.append(Inserted(task.id, True))
            continue
        answers.append(await _insert_keyed(conn, task))
    if plain:
        await conn.execute(_INSERT_MANY, *insert_columns(plain))
    return answers


def insert_columns(tasks: Sequence[NewTask]) -> list[list[Any]]:
    """The array parameters of ``insert_many`` for ``tasks`` (none with a key)."""
    return [
        [t.id for t in tasks],
        [t.name for t in tasks],
        [t.queue for t in tasks],
        [t.args_json for t in tasks],
        [t.kwargs_json for t in tasks],
        [t.priority for t in tasks],
        [t.max_attempts for t in tasks],
        [t.run_at for t in tasks],
        [t.created_at for t in tasks],
        [t.timeout for t in tasks],
        [t.limits.concurrency_key for t in tasks],
        [t.limits.concurrency_limit for t in tasks],
        [t.limits.rate_key for t in tasks],
        [t.limits.rate_limit for t in tasks],
        [t.limits.rate_period for t in tasks],
        [t.trace_context for t in tasks],
    ]


async def _insert_keyed(conn: Connection, task: NewTask) -> Inserted:
    """Insert one task with an idempotency or unique key, or find the task holding it.

    The active task holding a unique key may end between the conflict and the
    look-up (another transaction commits its outcome): the insert is then
    tried again, a few times.
    """
    limits = task.limits
    for _ in range(3):
        new_id = await conn.fetchval(
            _INSERT_ONE,
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
        if new_id is not None:
            return Inserted(new_id, True)
        existing = None
        if task.idempotency_key is not None:
            existing = await conn.fetchval(_SQL["select_key"], task.idempotency_key)
        if existing is None and limits.unique_key is not None:
            existing = await conn.fetchval(_SQL["select_unique"], limits.unique_key)
        if existing is not None:
            return Inserted(existing, False)
    raise StoreUnavailableError(
        f"the key of task {task.id} was taken by a concurrent transaction this one cannot"
        " see; try again"
    )


async def apply_finishes(
    tx: Tx, batch: Sequence[WriteRequest], indexes: list[int], results: list[Any]
) -> None:
    """End runs in one statement; each request learns which of its changes applied."""
    changes: list[Finish] = [c for i in indexes for c in batch[i].payload]
    columns: list[list[Any]] = [[] for _ in range(14)]
    now = tx.now
    for change in changes:
        error, progress = change.error, change.progress
        if error is not None:  # cleaned once, for the latest error and its history entry
            error = replace(
                error,
                type=clean(error.type) or "",
                message=clean(error.message) or "",
                traceback=clean(error.traceback),
            )
        row = (
            change.task_id,
            change.state.value,
            change.result_json,
            None if error is None else error.type,
            None if error is None else error.message,
            None if error is None else error.traceback,
            change.run_at,
            change.refund or change.snooze,
            None if progress is None else progress.current,
            None if progress is None else progress.total,
            None if progress is None else clean(progress.message),
            change.owner,
            error_entry(error, now),
            change.snooze,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    rows = await tx.conn.fetch(_FINISH, *columns, now)
    applied = {row[0] - 1 for row in rows}  # ordinality counts from 1
    if any(row[1] for row in rows):  # a concurrency slot is free: see postgres/held.py
        tx.held.clear()
        tx.notify = tx.notify_limits = True
    if any(_makes_due_work(changes[i], now) or changes[i].workflow_step for i in applied):
        tx.notify = True
    start = 0
    for index in indexes:
        count = len(batch[index].payload)
        results[index] = [start + n in applied for n in range(count)]
        start += count


def _makes_due_work(change: Finish, now: float) -> bool:
    return change.state is State.QUEUED and (change.run_at is None or change.run_at <= now)


async def apply_progress(tx: Tx, updates: list[tuple[str, str, Progress]]) -> None:
    """Record progress reports ``(task_id, owner, progress)`` of running tasks."""
    # One UPDATE applies at most one row per task: keep each task's latest report.
    latest: dict[tuple[str, str], Progress] = {}
    for task_id, owner, progress in updates:
        latest[task_id, owner] = progress
    await tx.conn.execute(
        _PROGRESS,
        [task_id for task_id, _ in latest],
        [owner for _, owner in latest],
        [p.current for p in latest.values()],
        [p.total for p in latest.values()],
        [clean(p.message) for p in latest.values()],
    )
