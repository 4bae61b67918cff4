"""Turning prepared calls into stored rows: the enqueue paths behind :class:`~tasks.Tasks`.

Contract: a call is refused (NotAcceptingError) unless the system accepts
work; every call names a task registered with the same :class:`~tasks.Tasks`
(UnknownTaskError otherwise) and is serialised before anything is written, so
one bad call stores none. :func:`enqueue_rows` returns once its rows are
committed, all in one transaction; :func:`enqueue_in` writes into the caller's
open transaction and commits nothing. The local dispatcher is woken for rows
due now (before the insert: see :func:`enqueue_rows`) and timed for later ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tasks import tracing
from tasks.errors import InvalidArgumentsError, NotAcceptingError, UnknownTaskError
from tasks.events import TaskEvent
from tasks.handle import TaskHandle
from tasks.limits import row_limits
from tasks.model import NewTask, State, TaskRecord, new_id
from tasks.orm import driver_connection
from tasks.registry import TaskCall
from tasks.runtime import Runtime
from tasks.serialization import dumps

if TYPE_CHECKING:
    from tasks.extension import Tasks


def accepting_runtime(tasks: Tasks) -> Runtime:
    """The running system, if it takes new work; raises NotAcceptingError."""
    rt = tasks.runtime
    if not rt.accepting:
        raise NotAcceptingError("the task system is shutting down; try again later")
    return rt


async def enqueue_rows(
    tasks: Tasks, calls: Iterable[TaskCall[Any]]
) -> list[tuple[NewTask, TaskHandle[Any]]]:
    """Store ``calls`` in one transaction; each row with its handle, in order."""
    rt = accepting_runtime(tasks)
    now = time.time()
    calls = list(calls)
    if any(call.options.depends_on for call in calls):
        raise InvalidArgumentsError("a task with depends_on is enqueued on its own (enqueue())")
    rows = [new_task(rt, call, now) for call in calls]
    if not rows:
        return []
    # Wake the dispatcher before the insert is submitted (both stores queue
    # the write before their first await): the claim it makes is queued
    # after the insert, so it shares the insert's transaction or a later
    # one (claims are applied after inserts) and always sees the new rows;
    # the task then starts after one commit instead of two.
    if min(row.run_at for row in rows) <= now:
        rt.wake()
    inserted = await rt.store.insert(rows, max_queued=rt.config.max_queued)
    for row in rows:
        if row.run_at > now:
            rt.wake_at(row.run_at)
    await announce(rt, [row for row, r in zip(rows, inserted, strict=True) if r.created])
    return [
        (row, TaskHandle[Any](tasks, result.id, created=result.created))
        for row, result in zip(rows, inserted, strict=True)
    ]


async def announce(rt: Runtime, created: list[NewTask]) -> None:
    """Tell this process of rows just committed: an ``enqueued`` event each, then the
    ``on_enqueue`` hooks."""
    for row in created:
        rt.bus.emit(TaskEvent("enqueued", row.id, row.name))
    if rt.hooks.has("on_enqueue"):
        for row in created:
            await rt.hooks.run("on_enqueue", queued_record(row))


async def enqueue_with_record(
    tasks: Tasks, call: TaskCall[Any]
) -> tuple[TaskHandle[Any], TaskRecord]:
    """Store one call; its handle and record as of the commit.

    A new task's record is built from the row just inserted (no read back);
    when an idempotency key matched an existing task, that one is read.
    """
    [(row, handle)] = await enqueue_rows(tasks, [call])
    if not handle.created:
        return handle, await tasks.get(handle.id)
    return handle, queued_record(row)


def queued_record(row: NewTask) -> TaskRecord:
    """The record of a task just inserted as ``row``, as the store would return it."""
    return TaskRecord(
        id=row.id,
        name=row.name,
        queue=row.queue,
        state=State.QUEUED,
        args=json.loads(row.args_json),
        kwargs=json.loads(row.kwargs_json),
        priority=row.priority,
        attempts=0,
        max_attempts=row.max_attempts,
        run_at=row.run_at,
        created_at=row.created_at,
        idempotency_key=row.idempotency_key,
        timeout=row.timeout,
        limits=row.limits,
        trace_context=row.trace_context,
    )


async def enqueue_in(
    tasks: Tasks, connection: Any, calls: Iterable[TaskCall[Any]]
) -> list[TaskHandle[Any]]:
    """Insert ``calls`` through the caller's connection, inside its open transaction.

    The dispatcher is woken a little later even for rows due now: they are
    visible only once the caller commits.
    """
    rt = accepting_runtime(tasks)
    now = time.time()
    rows = [new_task(rt, call, now) for call in calls]
    inserted = await rt.store.insert_in(await driver_connection(connection), rows)
    for row in rows:
        rt.wake_at(max(row.run_at, now + 0.05))
    if rt.hooks.has("on_enqueue"):
        for row, result in zip(rows, inserted, strict=True):
            if result.created:
                await rt.hooks.run("on_enqueue", queued_record(row))
    return [TaskHandle[Any](tasks, r.id, created=r.created) for r in inserted]


def new_task(rt: Runtime, call: TaskCall[Any], now: float) -> NewTask:
    """The row for ``call`` enqueued at ``now``: options first, then task, then config."""
    if rt.registry.get(call.task.name) is not call.task:
        raise UnknownTaskError(f"task {call.task.name!r} is not registered with this Tasks")
    trace_context = tracing.carrier() if rt.config.tracing else None
    return build_row(call, now, rt.config.default_max_attempts, trace_context)


def build_row(
    call: TaskCall[Any], now: float, default_max_attempts: int, trace_context: str | None = None
) -> NewTask:
    """The row for ``call`` at ``now``, given what the config decides (no registry check)."""
    task, options = call.task, call.options
    run_at = now
    if options.run_at is not None:
        run_at = options.run_at
    elif options.delay:
        run_at = now + options.delay
    max_attempts = options.max_attempts or task.max_attempts or default_max_attempts
    return NewTask(
        id=new_id(),
        name=task.name,
        queue=options.queue or task.queue,
        args_json=dumps(list(call.args), f"the arguments of task {task.name}"),
        kwargs_json=dumps(call.kwargs, f"the keyword arguments of task {task.name}"),
        priority=task.priority if options.priority is None else options.priority,
        max_attempts=max_attempts,
        run_at=run_at,
        created_at=now,
        idempotency_key=options.idempotency_key,
        timeout=options.timeout,
        limits=row_limits(
            task.name,
            task.limits,
            call.args,
            call.kwargs,
            {
                "concurrency_key": options.concurrency_key,
                "rate_key": options.rate_key,
                "unique_key": options.unique_key,
            },
        ),
        trace_context=trace_context,
    )
