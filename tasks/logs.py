"""Task fields on log records, and the lines the engine logs about each run.

While a task runs (its body on the event loop, in a pool thread, or in a pool
process) every log record created in its context, by any logger, carries four
attributes a formatter can show: ``task_id``, ``task_name``, ``task_queue``
and ``task_attempt``. Records made outside a task do not have them (give a
``%(task_id)s`` format a default with ``logging.Formatter(defaults=...)``).
They come from a log record factory installed once per process
(:func:`install`), which wraps whatever factory was there before; inside a
task these four names are taken, so ``extra={"task_id": ...}`` raises
``KeyError`` there as logging does for any attribute a record already has.

The engine's own lines about a run, on the ``tasks`` logger:

* INFO when the body starts and when it succeeds, is snoozed, put back at
  shutdown or cancelled (``task_outcome`` and ``task_duration`` as extra
  fields on the end line);
* WARNING, one line without a traceback, for a failed attempt that is retried;
* ERROR with the traceback for a task that failed for good.
"""

from __future__ import annotations

import logging
import threading
import time
from contextvars import ContextVar, Token
from typing import Any, NamedTuple

from tasks.model import Finish, State, TaskRecord
from tasks.retrying import ChildError, Retry

log = logging.getLogger("tasks")

FIELDS = ("task_id", "task_name", "task_queue", "task_attempt")
"""The attributes set on records made inside a task."""


class LogFields(NamedTuple):
    """What every record made inside one run of a task carries (a tuple: cheap to make)."""

    task_id: str
    task_name: str
    task_queue: str
    task_attempt: int


_fields: ContextVar[LogFields | None] = ContextVar("tasks_log_fields", default=None)
_install_lock = threading.Lock()


def bind(task_id: str, name: str, queue: str, attempt: int) -> Token[LogFields | None]:
    """Attach a task's fields to the records of this context; undo with :func:`unbind`."""
    return _fields.set(LogFields(task_id, name, queue, attempt))


def bind_record(record: TaskRecord) -> Token[LogFields | None]:
    """:func:`bind` for a claimed task's record."""
    return bind(record.id, record.name, record.queue, record.attempts)


def unbind(token: Token[LogFields | None]) -> None:
    """Restore the fields that were current before :func:`bind`."""
    _fields.reset(token)


def current_fields() -> LogFields | None:
    """The fields of the task running in this context (None outside a task)."""
    return _fields.get()


def install() -> None:
    """Install the record factory that adds the task fields; idempotent, thread-safe."""
    with _install_lock:
        previous = logging.getLogRecordFactory()
        if getattr(previous, "tasks_fields", False):
            return

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            fields = _fields.get()
            if fields is not None:
                record.task_id = fields.task_id
                record.task_name = fields.task_name
                record.task_queue = fields.task_queue
                record.task_attempt = fields.task_attempt
            return record

        factory.tasks_fields = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)


def started(record: TaskRecord) -> None:
    """The INFO line of a body starting."""
    log.info(
        "task %s %s started (attempt %d of %d)",
        record.name,
        record.id,
        record.attempts,
        record.max_attempts,
    )


def ended(record: TaskRecord, change: Finish, duration: float, error: BaseException | None) -> None:
    """The line of a run's outcome as committed: INFO, WARNING (retry) or ERROR (failed)."""
    outcome = outcome_name(change)
    level = _LEVELS.get(outcome, logging.INFO)
    if not log.isEnabledFor(level):
        return
    extra = {"task_outcome": outcome, "task_duration": round(duration, 6)}
    where = f"task {record.name} {record.id}"
    attempt = f"attempt {record.attempts} of {record.max_attempts}"
    if outcome == "failed":
        info = change.error
        what = f"{info.type}: {info.message}" if info is not None else "unknown error"
        traced = error is not None and not _carries_text_traceback(error)
        text = "" if traced or info is None or not info.traceback else f"\n{info.traceback}"
        log.error(
            "%s failed on %s after %.3f s: %s%s",
            where,
            attempt,
            duration,
            what,
            text,
            exc_info=error if traced else None,
            extra=extra,
        )
    elif outcome == "retried":
        info = change.error
        what = f"{info.type}: {info.message}" if info is not None else "unknown error"
        delay = max(0.0, (change.run_at or time.time()) - time.time())
        log.warning(
            "%s failed on %s, will retry in %.1f s: %s",
            where,
            attempt,
            delay,
            what.splitlines()[0] if what else what,
            extra=extra,
        )
    elif outcome == "snoozed":
        delay = max(0.0, (change.run_at or time.time()) - time.time())
        reason = getattr(error, "reason", None)
        log.info(
            "%s snoozed for %.1f s (%s)%s",
            where,
            delay,
            attempt,
            f": {reason}" if reason else "",
            extra=extra,
        )
    else:
        log.info("%s %s after %.3f s (%s)", where, outcome, duration, attempt, extra=extra)


_LEVELS = {"failed": logging.ERROR, "retried": logging.WARNING}


def outcome_name(change: Finish) -> str:
    """``succeeded``, ``failed``, ``retried``, ``snoozed``, ``released`` or ``cancelled``."""
    if change.state == State.QUEUED:
        if change.snooze:
            return "snoozed"
        return "released" if change.refund else "retried"
    return change.state.value


def _carries_text_traceback(error: BaseException) -> bool:
    """An error whose traceback is text from elsewhere (a pool process), or a snooze."""
    return isinstance(error, ChildError | Retry)
