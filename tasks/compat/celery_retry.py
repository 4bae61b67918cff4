"""Celery's ``self.retry(...)`` for bound tasks, on the engine's :class:`~tasks.Retry`.

As Celery documents ``Task.retry``: it raises a retry exception (use
``raise self.retry(...)``), the new run comes after ``countdown`` seconds (or at
``eta``; default ``default_retry_delay``, 180 s), and it counts against
``max_retries`` (the task's, or the one given to the call). Unlike
``tasks.Retry`` (a snooze) it spends an attempt, and the attempt's error is
``exc`` (or the retry itself). Once ``request.retries`` reached ``max_retries``
the call raises ``exc`` when given, else :class:`MaxRetriesExceededError`, and
that exception fails the task. The engine's ``max_attempts`` (``max_retries + 1``
at registration) still bounds the runs: a larger ``max_retries`` given to the
call cannot add attempts.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tasks.retrying import Retry

if TYPE_CHECKING:
    from tasks.compat.celery_task import CeleryTask

MAX_RETRIES = 3
"""Celery's default ``Task.max_retries``: a task runs at most this many times plus one."""
DEFAULT_RETRY_DELAY = 180.0
"""Celery's default ``Task.default_retry_delay``: three minutes."""


class MaxRetriesExceededError(Exception):
    """``self.retry()`` was called with no retry left and no ``exc`` to raise instead."""


class CeleryRetry(Retry):
    """The exception ``self.retry()`` raises: run again later, spending an attempt."""

    spends_attempt = True


def retry_task(
    task: CeleryTask[Any],
    *,
    exc: BaseException | None,
    countdown: float | None,
    eta: datetime | None,
    max_retries: int | None,
) -> CeleryRetry:
    """Raise the retry of the running ``task`` (see the module docstring); never returns."""
    request = task.request
    if request.id is None:
        raise RuntimeError(f"{task.name}.retry() can only be called inside a run of the task")
    limit = task.max_retries if max_retries is None else max_retries
    if request.retries >= limit:
        if exc is not None:
            raise exc
        raise MaxRetriesExceededError(
            f"task {task.name} {request.id} has used all of its {limit} retries"
        )
    if countdown is not None and eta is not None:
        raise ValueError("give countdown or eta, not both")
    if eta is not None:
        at = (eta if eta.tzinfo else eta.replace(tzinfo=UTC)).timestamp()
        delay = max(0.0, at - time.time())
    else:
        delay = task.default_retry_delay if countdown is None else max(0.0, countdown)
    reason = f"retry in {delay} s" + (f": {type(exc).__name__}: {exc}" if exc else "")
    signal = CeleryRetry(delay, reason)
    signal.cause = exc
    raise signal
