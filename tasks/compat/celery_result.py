"""Celery's view of a stored task: state names, ``info``, and :class:`AsyncResult`.

=============  ============================================================
stored state   Celery state
=============  ============================================================
queued         ``PENDING`` (``RETRY`` when an earlier attempt failed)
running        the state last set with ``update_state``; before the first,
               ``STARTED`` if the task tracks it (``track_started``), else
               still ``PENDING``/``RETRY``, as in Celery
succeeded      ``SUCCESS``
failed         ``FAILURE``
cancelling     ``REVOKED`` (what ``revoke(terminate=True)`` shows at once; the
               body is being stopped)
cancelled      ``REVOKED``
=============  ============================================================

A custom state set with ``update_state`` is read back from the progress
message (see :mod:`tasks.compat.celery_api` for the mapping).
"""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from tasks.compat.bridge import BlockingCallError, on_loop_thread, run_blocking
from tasks.errors import (
    InvalidStateError,
    TaskFailedError,
    TaskNotFoundError,
    TasksError,
    TaskTimeoutError,
    UnknownTaskError,
    WorkerLostError,
)
from tasks.model import ErrorInfo, Progress, State, TaskRecord

if TYPE_CHECKING:
    from tasks.extension import Tasks

R = TypeVar("R")

PENDING = "PENDING"
STARTED = "STARTED"
PROGRESS = "PROGRESS"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
_ENGINE_ERRORS = {e.__name__: e for e in (WorkerLostError, TaskTimeoutError, UnknownTaskError)}
"""Errors the engine records for a run it ended; rebuilt as themselves."""


class TaskRevokedError(TasksError):
    """Raised by :meth:`AsyncResult.get` for a cancelled (revoked) task."""


class RemoteTaskError(TaskFailedError):
    """A task failed with an exception that cannot be rebuilt here (not a builtin).

    ``type_name`` is the original exception's class name.
    """

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name


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


def celery_state(record: TaskRecord | None, track_started: bool = False) -> str:
    """The Celery state name of a stored task (None: unknown id, ``PENDING``).

    A running task reads as its last ``update_state`` state; with none, as
    ``PROGRESS`` once it reported progress through ``current_task().progress``;
    else ``STARTED`` when started tasks are tracked, and otherwise as it read
    before it started (``PENDING``, or ``RETRY``), as Celery's result backend does.
    """
    if record is None:
        return PENDING
    if record.state == State.RUNNING:
        custom = _custom_state(record.progress)
        if custom is not None:
            return custom[0]
        if record.progress != Progress():
            return PROGRESS
        if track_started:
            return STARTED
    if record.state in (State.QUEUED, State.RUNNING):
        return RETRY if record.error is not None and record.attempts > 0 else PENDING
    return {
        State.SUCCEEDED: SUCCESS,
        State.FAILED: FAILURE,
        State.CANCELLING: REVOKED,
        State.CANCELLED: REVOKED,
    }[record.state]


def celery_info(record: TaskRecord | None, track_started: bool = False) -> Any:
    """Celery's ``info`` (= ``result``) of a stored task, per state.

    ``PENDING``: None. ``STARTED``: ``{"pid", "hostname"}`` of the worker.
    A custom state: its ``meta``. ``PROGRESS`` without ``update_state``:
    ``{"current", "total", "message"}``. ``SUCCESS``: the return value.
    ``FAILURE`` and ``RETRY``: the exception. ``REVOKED``: a :class:`TaskRevokedError`.
    """
    state = celery_state(record, track_started)
    if record is None or state == PENDING:
        return None
    if state == SUCCESS:
        return record.result
    if state == REVOKED:
        return TaskRevokedError(f"task {record.id} was revoked")
    if state in (FAILURE, RETRY):
        return rebuild_exception(record.error or ErrorInfo("Exception", ""))
    if state == STARTED:
        return _worker(record.lease_owner)
    custom = _custom_state(record.progress)
    if custom is not None:
        return custom[1]
    p = record.progress
    return {"current": p.current, "total": p.total, "message": p.message}


def _worker(owner: str | None) -> dict[str, Any]:
    """Celery's ``STARTED`` meta, ``{"pid", "hostname"}``, from a lease owner ``host:pid:nonce``."""
    parts = (owner or "").rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return {"pid": None, "hostname": owner}
    return {"pid": int(parts[1]), "hostname": parts[0]}


def rebuild_exception(error: ErrorInfo) -> BaseException:
    """The stored error as an exception: its class if builtin or one the engine itself
    stores (``WorkerLostError``, ``TaskTimeoutError``...), else :class:`RemoteTaskError`."""
    cls = getattr(builtins, error.type, None) or _ENGINE_ERRORS.get(error.type)
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            return cls(error.message)
        except Exception:
            pass
    return RemoteTaskError(error.type, error.message)


def _custom_state(progress: Progress) -> tuple[str, Any] | None:
    if not progress.message or not progress.message.startswith("{"):
        return None
    try:
        decoded = json.loads(progress.message)
    except ValueError:
        return None
    if (
        isinstance(decoded, dict)
        and decoded.keys() == {"state", "meta"}
        and isinstance(decoded["state"], str)
    ):
        return decoded["state"], decoded["meta"]
    return None
