"""A handle on an enqueued task: its id, status, outcome and cancellation."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from tasks.errors import TaskFailedError
from tasks.model import State, TaskRecord

if TYPE_CHECKING:
    from tasks.extension import Tasks

R = TypeVar("R")


class TaskHandle(Generic[R]):
    """Returned by ``enqueue``; the task is durably stored by the time you hold it.

    ``created`` is false when an idempotency key matched an existing task, whose
    handle this is.
    """

    def __init__(self, tasks: Tasks, task_id: str, *, created: bool = True) -> None:
        self._tasks = tasks
        self.id = task_id
        self.created = created

    def __repr__(self) -> str:
        return f"<TaskHandle {self.id}>"

    async def status(self) -> TaskRecord:
        """The task's stored record (state, progress, result, error...)."""
        return await self._tasks.get(self.id)

    async def state(self) -> State:
        """The task's current state."""
        return (await self.status()).state

    async def wait(self, timeout: float | None = None) -> TaskRecord:
        """Wait until the task has finished (succeeded, failed or cancelled).

        Changes made in this process wake the wait at once; changes made by other
        processes are seen by polling. Raises ``TimeoutError`` after ``timeout``.
        """
        return await self._tasks.wait(self.id, timeout)

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the task and return its result; raise TaskFailedError if it has none."""
        record = await self.wait(timeout)
        if record.state != State.SUCCEEDED:
            detail = f": {record.error.type}: {record.error.message}" if record.error else ""
            raise TaskFailedError(f"task {self.id} ({record.name}) {record.state}{detail}")
        return cast(R, record.result)

    async def cancel(self) -> TaskRecord:
        """Cancel the task (queued: it never runs; running: it is stopped)."""
        return await self._tasks.cancel(self.id)


async def wait_for_change(event: asyncio.Event, poll: float) -> None:
    """Wait for ``event`` or ``poll`` seconds, whichever comes first."""
    try:
        async with asyncio.timeout(poll):
            await event.wait()
    except TimeoutError:
        pass
