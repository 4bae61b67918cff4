"""Running one claimed task: pick its executor, apply its timeout, record its outcome.

The timeout is the task's own (``options(timeout=...)``, stored with it) or
else the registered one; what an exception becomes is :mod:`tasks.retrying`'s.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from pebble import ProcessExpired

from tasks.blocking import run_blocking
from tasks.context import TaskContext, set_current
from tasks.errors import TaskTimeoutError, UnknownTaskError, WorkerLostError
from tasks.events import TaskEvent
from tasks.model import Finish, Progress, State, TaskRecord
from tasks.observing import RunObserver
from tasks.retrying import ChildError, Retry, outcome
from tasks.serialization import encode_result
from tasks.step_inputs import step_arguments

if TYPE_CHECKING:
    from tasks.registry import Task
from tasks.runtime import Runtime

log = logging.getLogger("tasks")

CancelReason = Literal["cancelled", "shutdown", "lost"]


@dataclass(eq=False)
class Execution:
    """One run of a task in this process."""

    record: TaskRecord
    context: TaskContext | None = None
    task: asyncio.Task[None] | None = None
    cancel_reason: CancelReason | None = None
    draining: bool = False
    """The shutdown began: the task was told to stop (see :meth:`ask_to_stop`)."""
    started: float = field(default_factory=time.monotonic)
    on_settled: Callable[[], None] | None = field(default=None, repr=False)
    """Called once when the run is over and only its outcome commit is pending."""
    observer: RunObserver | None = field(default=None, repr=False)
    """Log fields and lines, hooks and trace span of the run (:mod:`tasks.observing`)."""
    error: BaseException | None = field(default=None, repr=False)
    """The exception the body raised, if any."""

    def settle(self) -> None:
        """Mark the run as over (its outcome may still be committing); idempotent.

        The dispatcher uses this to free the worker slot early, so the next claim
        can share the transaction that commits this outcome.
        """
        callback, self.on_settled = self.on_settled, None
        if callback is not None:
            callback()

    def ask_to_stop(self) -> None:
        """The shutdown began: set ``current_task().cancelled`` so cooperative code can stop.

        A run whose code then read that flag is requeued with its attempt given
        back, whatever it returned: it may have stopped before its work was done.
        """
        self.draining = True
        if self.context is not None:
            self.context.mark_cancelled()

    def stop_reason(self) -> CancelReason | None:
        """Why the run was asked to stop (None: it was not); see :meth:`cancel`."""
        return self.cancel_reason

    def cancel(self, reason: CancelReason) -> None:
        """Stop the run; the first reason decides what is written (see :func:`run_execution`).

        Asking again for the same reason does nothing (a run that waits for
        its thread to return is not interrupted by a repeated request); a new
        reason (the shutdown's deadline) interrupts it again.
        """
        if reason == self.cancel_reason:
            return
        if self.cancel_reason is None:
            self.cancel_reason = reason
        if self.context is not None:
            self.context.mark_cancelled()
        if self.task is not None:
            self.task.cancel()


class ProgressWriter:
    """Throttles one task's progress writes: at most one per interval, last one kept."""

    def __init__(self, runtime: Runtime, record: TaskRecord) -> None:
        self._rt = runtime
        self._record = record
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._latest: Progress | None = None
        self._dirty = False
        self._written_at = -1e9
        self._timer: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()

    def report(self, progress: Progress) -> None:
        """Accept a report from the loop, a pool thread or the process relay."""
        if threading.get_ident() == self._loop_thread:
            self._update(progress)
        else:
            self._loop.call_soon_threadsafe(self._update, progress)

    def _update(self, progress: Progress) -> None:
        self._latest = progress
        self._dirty = True
        if self._timer is not None:
            return
        delay = self._written_at + self._rt.config.progress_interval - self._loop.time()
        if delay <= 0:
            self._flush()
        else:
            self._timer = self._loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if not self._dirty or self._latest is None:
            return
        self._dirty = False
        self._written_at = self._loop.time()
        write = asyncio.create_task(self._write(self._latest))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    async def _write(self, progress: Progress) -> None:
        try:
            await self._rt.store.set_progress(self._record.id, self._rt.owner, progress)
        except Exception as exc:
            log.warning("could not record progress of task %s: %s", self._record.id, exc)
            return
        self._rt.bus.emit(TaskEvent("progress", self._record.id, self._record.name))

    def close(self) -> Progress | None:
        """Stop writing; return the last report unless it is already written."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # A write still in flight may land after the finish and be ignored: resend it.
        return self._latest if self._dirty or self._writes else None


async def run_execution(rt: Runtime, execution: Execution) -> None:
    """Run a claimed task to its end and commit the outcome.

    On cancellation the reason decides the write: ``shutdown`` puts the task
    back in the queue and gives the attempt back; ``cancelled`` confirms the
    cancel (``cancelling`` becomes ``cancelled``) once the body has ended;
    ``lost`` writes nothing (another owner has the task).
    A run that read ``current_task().cancelled`` after the shutdown began is
    put back the same way, whatever it returned.
    """
    async with RunObserver(rt, execution) as observer:
        execution.observer = observer
        await _run(rt, execution, observer)


async def _run(rt: Runtime, execution: Execution, observer: RunObserver) -> None:
    record = execution.record
    writer = ProgressWriter(rt, record)
    context = TaskContext(
        record.id, record.name, record.attempts, record.max_attempts, writer.report
    )
    execution.context = context
    if execution.draining:
        context.mark_cancelled()
    stopped = execution.stop_reason()
    if stopped is not None:  # asked to stop before it started: the body never runs
        execution.settle()
        if stopped == "cancelled":
            await _commit(rt, execution, Finish(record.id, rt.owner, State.CANCELLED))
        return
    task = rt.registry.get(record.name)
    limited = record.limits.claim_limited or record.queue in rt.config.queue_concurrency
    rt.bus.emit(
        TaskEvent(
            "started", record.id, record.name, queue_wait=_queue_wait(record), limited=limited
        )
    )
    try:
        await observer.began()  # inside: a cancel during a before_run hook is handled below
        if task is None:
            raise UnknownTaskError(f"task {record.name!r} is not registered in this process")
        if record.receives is not None:  # a workflow step: what the steps before it gave
            record.args = await step_arguments(rt.store, record)
        value = await _call(rt, execution, task, context)
        change = Finish(
            record.id,
            rt.owner,
            State.SUCCEEDED,
            result_json=value if task.executor == "process" else encode_result(value, task.name),
            progress=writer.close(),
        )
    except asyncio.CancelledError:
        writer.close()
        observer.ran()
        if execution.cancel_reason == "shutdown":
            execution.settle()
            await _commit(rt, execution, Finish(record.id, rt.owner, State.QUEUED, refund=True))
        elif execution.cancel_reason == "cancelled":
            execution.settle()
            await _commit(rt, execution, Finish(record.id, rt.owner, State.CANCELLED))
        elif execution.cancel_reason is None:
            raise
        return
    except Exception as exc:
        execution.error = exc
        change = outcome(rt.owner, task, record, exc, writer.close())
    if _stopped_early(execution):
        change = Finish(record.id, rt.owner, State.QUEUED, refund=True)
    observer.ran()
    execution.settle()
    await _commit(rt, execution, change)


def _stopped_early(execution: Execution) -> bool:
    """Whether the run saw the shutdown's stop request (its outcome may be partial)."""
    context = execution.context
    return execution.draining and context is not None and context.cancel_seen


async def _call(
    rt: Runtime, execution: Execution, task: Task[..., Any], context: TaskContext
) -> Any:
    record = execution.record
    args, kwargs = record.args, record.kwargs
    timeout = task.timeout if record.timeout is None else record.timeout
    if task.executor == "process":
        future = rt.executors.run_in_process(
            task.name,
            record.id,
            record.attempts,
            record.max_attempts,
            args,
            kwargs,
            timeout,
            record.queue,
        )
        try:
            ended = await asyncio.wrap_future(future)
        except TimeoutError:
            raise TaskTimeoutError(
                f"task ran past its timeout of {timeout} s; its process was stopped"
            ) from None
        except ProcessExpired as exc:
            raise WorkerLostError(f"the pool process died (exit code {exc.exitcode})") from None
        status, first, second, third, progress = ended
        if progress is not None:
            context.progress(progress.current, progress.total, progress.message)
        if status == "snooze":
            raise Retry(float(first or 0), second)
        if status == "error":
            raise ChildError(first or "Exception", second or "", third)
        return first
    async with rt.app.app_context():
        set_current(context)
        try:
            if task.executor == "async":
                if timeout is None:  # the common case skips the timeout's context
                    return await task.fn(*args, **kwargs)
                try:
                    async with asyncio.timeout(timeout):
                        return await task.fn(*args, **kwargs)
                except TimeoutError:
                    context.mark_cancelled()
                    raise TaskTimeoutError(f"task ran past its timeout of {timeout} s") from None
            return await run_blocking(rt, execution, task, context, timeout)
        finally:
            set_current(None)


def _queue_wait(record: TaskRecord) -> float | None:
    if record.started_at is None:
        return None
    return max(0.0, record.started_at - record.run_at)


async def _asked_to_stop(rt: Runtime, task_id: str) -> bool:
    """Whether the task is ``cancelling`` under this process's lease."""
    try:
        record = await rt.store.get(task_id)
    except Exception:
        return False  # its lease expires and the cancel completes by itself
    return (
        record is not None and record.state == State.CANCELLING and record.lease_owner == rt.owner
    )


async def _commit(rt: Runtime, execution: Execution, change: Finish) -> None:
    record = execution.record
    if record.workflow_id is not None:
        change = replace(change, workflow_step=True)
    try:
        [applied] = await rt.store.finish([change])
    except Exception:
        log.exception(
            "could not record the outcome of task %s %s; its lease will expire and it will"
            " run again",
            record.name,
            record.id,
        )
        return
    if not applied:
        if change.state != State.CANCELLED and await _asked_to_stop(rt, record.id):
            # The run ended as the cancel came in: confirm the cancel instead.
            await _commit(rt, execution, Finish(record.id, rt.owner, State.CANCELLED))
        return
    if execution.observer is not None:
        execution.observer.committed(change)
    kind = {
        State.SUCCEEDED: "succeeded",
        State.FAILED: "failed",
        State.CANCELLED: "cancelled",
        State.QUEUED: "released" if change.refund and not change.snooze else "retried",
    }[change.state]
    run_time = time.monotonic() - execution.started
    rt.bus.emit(TaskEvent(kind, record.id, record.name, run_time=run_time))  # type: ignore[arg-type]
    if change.state == State.QUEUED and change.run_at is not None:
        rt.wake_at(change.run_at)
