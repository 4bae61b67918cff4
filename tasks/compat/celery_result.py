"""Celery's :class:`AsyncResult`: one task's state, ``info`` and outcome, read from the store.

State names and ``info`` per stored state live in :mod:`tasks.compat.celery_states`
(re-exported here). A canvas step (:mod:`tasks.compat.celery_canvas`) that was
not run because a step it needs failed raises that step's exception from
:meth:`AsyncResult.get`, as Celery's ``get()`` re-raises a parent's failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from tasks.compat.bridge import BlockingCallError, on_loop_thread, run_blocking
from tasks.compat.celery_states import (
    FAILURE,
    PENDING,
    PROGRESS,
    READY_STATES,
    RETRY,
    REVOKED,
    STARTED,
    SUCCESS,
    RemoteTaskError,
    TaskRevokedError,
    celery_info,
    celery_state,
    rebuild_exception,
)
from tasks.errors import InvalidStateError, TaskNotFoundError
from tasks.model import ErrorInfo, State, TaskRecord

if TYPE_CHECKING:
    from tasks.compat.celery_group import GroupResult
    from tasks.extension import Tasks

__all__ = [
    "FAILURE",
    "PENDING",
    "PROGRESS",
    "READY_STATES",
    "RETRY",
    "REVOKED",
    "STARTED",
    "SUCCESS",
    "AsyncResult",
    "RemoteTaskError",
    "TaskRevokedError",
    "celery_info",
    "celery_state",
    "rebuild_exception",
]

R = TypeVar("R")
DEPENDENCY_ERROR = "DependencyError"
"""The error type the engine records on a step cancelled because one it needs did not succeed."""


class AsyncResult(Generic[R]):
    """A task's Celery-style view: ``state``, ``info``, ``result``, ``get()``...

    As in Celery, an id that matches no task reads as ``PENDING``.

    From a thread, each property read asks the store again (so a polling loop
    ``while not r.ready()`` works), until the task has finished: like Celery,
    a finished outcome is then kept. Two reads may therefore see two moments.
    On the event loop thread reads cannot block: they show the snapshot
    loaded by the last ``await r.arefresh()`` (or ``aget``), and raise
    :class:`~tasks.compat.bridge.BlockingCallError` before the first one.
    """

    def __init__(
        self, task_id: str, tasks: Tasks, track_started: Callable[[str], bool] | None = None
    ) -> None:
        self.id = task_id
        self.tasks = tasks
        self._track_started = track_started
        self._record: TaskRecord | None = None
        self._loaded = False
        self.parent: AsyncResult[Any] | GroupResult | None = None
        """For a canvas step, the result of what came before it (Celery's ``parent``)."""

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # -- loading -------------------------------------------------------------

    async def arefresh(self) -> AsyncResult[R]:
        """Load the task's current record; returns self."""
        try:
            self._record = await self.tasks.get(self.id)
        except TaskNotFoundError:
            self._record = None
        self._loaded = True
        return self

    def refresh(self) -> AsyncResult[R]:
        """Blocking :meth:`arefresh` for threads."""
        return run_blocking(
            self.tasks, self.arefresh, call="AsyncResult.refresh()", instead="await r.arefresh()"
        )

    def _current(self) -> TaskRecord | None:
        if on_loop_thread():
            if not self._loaded:
                raise BlockingCallError(
                    "AsyncResult properties read the store, which would block the event loop"
                    " thread; in async code `await result.arefresh()` first (or use"
                    " `await result.aget()`)"
                )
            return self._record
        if self._record is None or not self._record.done:
            self.refresh()
        return self._record

    # -- Celery's properties -------------------------------------------------

    def _tracks(self, record: TaskRecord | None) -> bool:
        return (
            record is not None
            and self._track_started is not None
            and (self._track_started(record.name))
        )

    @property
    def state(self) -> str:
        """The Celery state name (see the module docstring)."""
        record = self._current()
        return celery_state(record, self._tracks(record))

    status = state

    @property
    def info(self) -> Any:
        """What Celery gives in each state (see :func:`celery_info`): None while pending,
        the meta of ``update_state``, the result on success, the exception on failure."""
        record = self._current()
        return celery_info(record, self._tracks(record))

    result = info

    @property
    def traceback(self) -> str | None:
        """The failed run's formatted traceback, if any."""
        record = self._current()
        return None if record is None or record.error is None else record.error.traceback

    def ready(self) -> bool:
        """True once the task succeeded, failed or was revoked."""
        return self.state in READY_STATES

    def successful(self) -> bool:
        """True if the task succeeded."""
        return self.state == SUCCESS

    def failed(self) -> bool:
        """True if the task failed."""
        return self.state == FAILURE

    # -- waiting and revoking ------------------------------------------------

    async def aget(self, timeout: float | None = None, propagate: bool = True) -> R:
        """Wait for the outcome: the result, or (``propagate``) raise the failure.

        Raises ``TimeoutError`` after ``timeout`` seconds, :class:`TaskRevokedError`
        for a revoked task, and ``TaskNotFoundError`` for an unknown id (where
        Celery would wait forever).
        """
        self._record = record = await self.tasks.wait(self.id, timeout)
        self._loaded = True
        state, value = celery_state(record), celery_info(record)
        if state == SUCCESS or not propagate:
            return cast(R, value)
        if state == REVOKED:
            if record.error is not None and record.error.type == DEPENDENCY_ERROR:
                raise await failed_dependency(self.tasks, record)
            raise TaskRevokedError(f"task {self.id} was revoked")
        raise cast(BaseException, value)

    def get(self, timeout: float | None = None, propagate: bool = True) -> R:
        """Blocking :meth:`aget` for threads."""
        return run_blocking(
            self.tasks,
            lambda: self.aget(timeout, propagate),
            call="AsyncResult.get()",
            instead="await r.aget()",
        )

    async def arevoke(self) -> None:
        """Cancel the task (queued: never runs; running: stopped); no-op once finished."""
        with contextlib.suppress(InvalidStateError):
            await self.tasks.cancel(self.id)

    def revoke(self) -> None:
        """Blocking :meth:`arevoke` for threads."""
        run_blocking(
            self.tasks, self.arevoke, call="AsyncResult.revoke()", instead="await r.arevoke()"
        )


async def failed_dependency(tasks: Tasks, record: TaskRecord) -> BaseException:
    """Why the workflow step ``record`` was not run: the exception of the nearest step it
    needs (directly or through other skipped steps) that failed, or, when that step was
    revoked instead, a :class:`TaskRevokedError`."""
    detail = record.error.message if record.error else "a step it needs did not succeed"
    reason = TaskRevokedError(f"task {record.id} {detail}")
    if record.workflow_id is None:
        return reason
    workflow = await tasks.get_workflow(record.workflow_id)
    steps = {step.id: step for step in workflow.steps}
    needs: dict[str, list[str]] = {}
    for edge in workflow.edges:
        if edge.kind == "needs":
            needs.setdefault(edge.child_id, []).append(edge.parent_id)
    seen: set[str] = set()
    todo = [record.id]
    while todo:
        for parent_id in needs.get(todo.pop(0), []):
            parent = steps.get(parent_id)
            if parent is None or parent_id in seen:
                continue
            seen.add(parent_id)
            if parent.state == State.FAILED:
                return rebuild_exception(parent.error or ErrorInfo("Exception", ""))
            if parent.error is not None and parent.error.type == DEPENDENCY_ERROR:
                todo.append(parent_id)
    return reason
