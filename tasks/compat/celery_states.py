"""Celery's state names and ``info`` for a stored task, and the errors ``get()`` raises.

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
import json
from typing import Any

from tasks.errors import (
    TaskFailedError,
    TasksError,
    TaskTimeoutError,
    UnknownTaskError,
    WorkerLostError,
)
from tasks.model import ErrorInfo, Progress, State, TaskRecord

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
