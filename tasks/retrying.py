"""What a run's exception becomes: a retry, a snooze, or the task's failure.

Three ways back into the queue, each one write of the normal outcome
(:class:`~tasks.model.Finish`), emitted as a ``retried`` event:

* An exception, while attempts remain and the task's ``retry_on`` /
  ``dont_retry_on`` allow it: retried after the backoff; the attempt is spent
  and the error goes into the task's error history.
* :class:`Retry` (a *snooze*, as Oban and River call it): the task asks to run
  again after ``delay`` seconds. No attempt is spent and no error recorded;
  ``retry_on`` and ``dont_retry_on`` do not apply (the task asked for it). The
  task's snooze count is stored; once it reached the task's ``max_snoozes``, a
  further snooze fails the task with a :class:`~tasks.errors.TooManySnoozesError`.
* A :class:`Retry` whose ``spends_attempt`` is true (Celery's ``self.retry``,
  :mod:`tasks.compat.celery_api`): runs again after ``delay``, spending an
  attempt and recording ``cause`` (or the retry itself) as the attempt's
  error; with no attempt left the task fails with that error.
"""

from __future__ import annotations

import math
import time
import traceback
from typing import TYPE_CHECKING, Any

from tasks.errors import TooManySnoozesError, UnstorableResultError
from tasks.model import ErrorInfo, Finish, Progress, State, TaskRecord

if TYPE_CHECKING:
    from tasks.registry import Task

UNKNOWN_TASK_RETRY = 5.0
"""Seconds (times the attempt number) before a task unknown to this process is retried."""


class Retry(Exception):  # noqa: N818 (the name users raise: "raise tasks.Retry(...)")
    """Raise inside a task to run it again after ``delay`` seconds without spending an attempt.

    ``reason`` is logged and, if the task snoozes past its ``max_snoozes``,
    named in the error it fails with.
    """

    spends_attempt = False
    """True for a retry that counts against ``max_attempts`` (Celery's ``self.retry``)."""

    def __init__(self, delay: float = 0.0, reason: str | None = None) -> None:
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise TypeError(f"delay must be a number of seconds, got {delay!r}")
        if not math.isfinite(delay) or delay < 0:
            raise ValueError(f"delay must be a finite number of seconds >= 0, got {delay}")
        super().__init__(reason or f"retry in {delay} s")
        self.delay = float(delay)
        self.reason = reason
        self.cause: BaseException | None = None
        """With ``spends_attempt``: the error recorded for the attempt (None: this retry)."""


class ChildError(Exception):
    """An exception raised inside a pool process, carried back as text."""

    def __init__(self, type_name: str, message: str, tb: str | None) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.tb = tb


def outcome(
    owner: str,
    task: Task[..., Any] | None,
    record: TaskRecord,
    exc: Exception,
    progress: Progress | None,
) -> Finish:
    """The :class:`Finish` for a run of ``record`` that raised ``exc`` (see the module doc)."""
    if isinstance(exc, Retry) and not exc.spends_attempt:
        return _snooze(owner, task, record, exc, progress)
    error = _error_info(exc.cause if isinstance(exc, Retry) and exc.cause else exc)
    # An unknown name is retried too: during a rolling deploy an older worker may
    # claim a task only newer workers know; the retry gives one of them a chance.
    raised = exc.type_name if isinstance(exc, ChildError) else exc
    again = record.attempts < record.max_attempts and (
        isinstance(exc, Retry) or (not _unstorable(exc) and (task is None or task.retries(raised)))
    )
    if not again:
        return Finish(record.id, owner, State.FAILED, error=error, progress=progress)
    if isinstance(exc, Retry):
        delay = exc.delay
    elif task is not None:
        delay = task.backoff(record.attempts)
    else:
        delay = UNKNOWN_TASK_RETRY * record.attempts
    return Finish(
        record.id, owner, State.QUEUED, error=error, run_at=time.time() + delay, progress=progress
    )


def _snooze(
    owner: str,
    task: Task[..., Any] | None,
    record: TaskRecord,
    exc: Retry,
    progress: Progress | None,
) -> Finish:
    bound = task.max_snoozes if task is not None else 0
    if record.snoozes >= bound:
        message = (
            f"task snoozed too often: {record.snoozes} times, its max_snoozes is {bound}"
            f" (last reason: {exc.reason or 'none given'})"
        )
        error = ErrorInfo(TooManySnoozesError.__name__, message, None)
        return Finish(record.id, owner, State.FAILED, error=error, progress=progress)
    return Finish(
        record.id,
        owner,
        State.QUEUED,
        run_at=time.time() + exc.delay,
        refund=True,
        snooze=True,
        progress=progress,
    )


def _error_info(exc: BaseException) -> ErrorInfo:
    if isinstance(exc, ChildError):
        return ErrorInfo(exc.type_name, str(exc), exc.tb)
    tb = "".join(traceback.format_exception(exc))
    return ErrorInfo(type(exc).__qualname__, str(exc), tb)


def _unstorable(exc: Exception) -> bool:
    """A result that cannot be stored: running the body again would not change that."""
    if isinstance(exc, ChildError):
        return exc.type_name == UnstorableResultError.__name__
    return isinstance(exc, UnstorableResultError)
