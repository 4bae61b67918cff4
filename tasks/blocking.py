"""Running a plain-function task in the app's thread pool.

Two things differ from ``loop.run_in_executor``:

* The timeout counts from the moment the body starts in a pool thread, not
  from when it was handed to the pool (a body waiting for a free thread has
  not started, and its clock must not run).
* A thread cannot be killed. When the task times out or is cancelled while
  its body runs on, the worker slot is freed and the pool starts a thread in
  the stuck one's place (capacity stays as configured), but the outcome is
  recorded only once the body has returned: until then the task keeps its
  lease and stays ``running`` (or ``cancelling``), so a retry can never start
  while the earlier run still executes. A body that never returns is only
  ended by the process exiting; ``executor="process"`` is the killable choice.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from tasks.errors import TaskTimeoutError

if TYPE_CHECKING:
    from tasks.context import TaskContext
    from tasks.execution import Execution
    from tasks.registry import Task
    from tasks.runtime import Runtime

log = logging.getLogger("tasks")


async def run_blocking(
    rt: Runtime,
    execution: Execution,
    task: Task[..., Any],
    context: TaskContext,
    timeout: float | None,
) -> Any:
    """Run ``task``'s body in a pool thread, for at most ``timeout`` seconds (None: no limit).

    See the module docstring for the contract.
    """
    loop = asyncio.get_running_loop()
    began: asyncio.Future[None] = loop.create_future()
    run_in_context = contextvars.copy_context().run  # the app context and current_task()
    args, kwargs = execution.record.args, execution.record.kwargs

    def body() -> Any:
        loop.call_soon_threadsafe(_set_started, began)
        return run_in_context(task.fn, *args, **kwargs)

    submitted: Future[Any] = rt.executors.threads.submit(body)
    running = asyncio.wrap_future(submitted)
    try:
        await asyncio.wait({began, running}, return_when=asyncio.FIRST_COMPLETED)
        done, _ = await asyncio.wait({running}, timeout=timeout)
    except asyncio.CancelledError:
        context.mark_cancelled()
        if not submitted.cancel():  # it had started: wait until it returns
            await _outlive(rt, execution, submitted, running, "was cancelled")
        raise
    if not done:
        context.mark_cancelled()
        await _outlive(rt, execution, submitted, running, f"ran past its timeout of {timeout} s")
        raise TaskTimeoutError(
            f"task ran past its timeout of {timeout} s; its thread could not be killed"
            " and its failure was recorded once it returned"
        )
    return running.result()


async def _outlive(
    rt: Runtime,
    execution: Execution,
    submitted: Future[Any],
    running: asyncio.Future[Any],
    why: str,
) -> None:
    """Free the worker slot and replace the thread, then wait for the body to return."""
    if running.done():
        return
    execution.settle()
    rt.executors.threads.abandon(submitted)
    record = execution.record
    log.warning(
        "task %s %s %s; its thread runs on until the function returns or checks"
        " current_task().cancelled, and the task is held until then",
        record.name,
        record.id,
        why,
    )
    await asyncio.wait({running})
    if not running.cancelled():
        running.exception()  # retrieved: the outcome is the timeout or the cancel


def _set_started(began: asyncio.Future[None]) -> None:
    if not began.done():
        began.set_result(None)
