"""Reading and steering stored tasks: get, list, wait, cancel, retry.

Contract: every function reads or changes the store, which is the truth; a
missing task raises TaskNotFoundError, a page size outside 1..1000
InvalidArgumentsError, a cancel or retry the task's state does not allow
InvalidStateError (and changes nothing). A change made here is announced to
this process's listeners and watchers once the store has committed it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tasks.errors import InvalidArgumentsError, InvalidStateError, TaskNotFoundError
from tasks.events import TaskEvent
from tasks.handle import wait_for_change
from tasks.model import State, TaskRecord
from tasks.runtime import Runtime
from tasks.store import Page, Store
from tasks.summary import SummaryPage, TaskSummary

if TYPE_CHECKING:
    from tasks.extension import Tasks

WAIT_POLL = 0.5
"""Seconds between store reads while waiting on a task another process may finish."""


async def get(store: Store, task_id: str) -> TaskRecord:
    """The stored record of a task; raises TaskNotFoundError."""
    record = await store.get(task_id)
    if record is None:
        raise TaskNotFoundError(f"no task with id {task_id!r}")
    return record


def check_limit(limit: int) -> None:
    """Refuse a page size the stores do not serve."""
    if not 1 <= limit <= 1000:
        raise InvalidArgumentsError("limit must be between 1 and 1000")


async def list_page(
    store: Store, *, state: State | None, name: str | None, limit: int, cursor: str | None
) -> Page:
    """A page of records, newest first."""
    check_limit(limit)
    return await store.list(state=state, name=name, limit=limit, cursor=cursor)


async def list_summaries(
    store: Store, *, state: State | None, name: str | None, limit: int, cursor: str | None
) -> SummaryPage:
    """A page of summaries, newest first."""
    check_limit(limit)
    return await store.list_summaries(state=state, name=name, limit=limit, cursor=cursor)


async def get_summary(store: Store, task_id: str) -> TaskSummary:
    """The summary of one task; raises TaskNotFoundError."""
    summary = await store.get_summary(task_id)
    if summary is None:
        raise TaskNotFoundError(f"no task with id {task_id!r}")
    return summary


async def wait(tasks: Tasks, task_id: str, timeout: float | None) -> TaskRecord:
    """Until the task is done: woken by local changes, polling for other processes'."""
    async with asyncio.timeout(timeout):
        with tasks.watch(task_id) as changed:
            while True:
                changed.clear()
                record = await tasks.get(task_id)
                if record.done:
                    return record
                await wait_for_change(changed, WAIT_POLL)


async def cancel(rt: Runtime, task_id: str) -> TaskRecord:
    """Cancel a queued task now, or ask a running one to stop (``cancelling``)."""
    before = await get(rt.store, task_id)
    if before.done:
        raise InvalidStateError(f"task {task_id} has already {before.state.value}")
    record = await rt.store.cancel(task_id)
    if record is None:
        raise TaskNotFoundError(f"no task with id {task_id!r}")
    if record.state not in (State.CANCELLED, State.CANCELLING):
        raise InvalidStateError(f"task {task_id} has already {record.state.value}")
    if rt.dispatcher is not None:
        rt.dispatcher.cancel_local(task_id)
    if record.state == State.CANCELLED:
        rt.bus.emit(TaskEvent("cancelled", task_id, record.name))
    else:
        rt.bus.touch(task_id)
    return record


async def retry(rt: Runtime, task_id: str) -> TaskRecord:
    """Queue a failed or cancelled task again and wake the dispatcher."""
    before = await get(rt.store, task_id)
    if before.state == State.CANCELLING:
        raise InvalidStateError(
            f"task {task_id} is still stopping (cancelling): its run has not ended yet;"
            " retry it once it is cancelled"
        )
    if before.state not in (State.FAILED, State.CANCELLED):
        raise InvalidStateError(
            f"only failed or cancelled tasks can be retried; task {task_id} is {before.state.value}"
        )
    record = await rt.store.retry(task_id)
    if record is not None and record.state != State.QUEUED and record.limits.unique_key:
        raise InvalidStateError(
            f"task {task_id} cannot be retried while another task with its unique key"
            f" {record.limits.unique_key!r} is queued or running"
        )
    if record is None or record.state != State.QUEUED:
        raise InvalidStateError(f"task {task_id} could not be retried")
    rt.wake()
    rt.bus.emit(TaskEvent("enqueued", task_id, record.name))
    return record
