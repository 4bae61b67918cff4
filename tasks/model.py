"""The task record and the values stored with it."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    """Where a task is in its life."""

    QUEUED = "queued"
    WAITING = "waiting"
    """A workflow step waiting for the steps it needs (``queued`` once they succeeded)."""
    RUNNING = "running"
    CANCELLING = "cancelling"
    """Asked to stop while running; ``cancelled`` once its run has ended."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})


@dataclass(frozen=True, slots=True)
class Progress:
    """Progress a task reported: ``current`` of ``total`` with an optional message."""

    current: float = 0
    total: float | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a run of a task failed: the exception's type, message and formatted traceback.

    In a task's error history (:attr:`TaskRecord.errors`) ``at`` is when the
    failure was recorded (Unix time) and ``attempt`` the attempt it ended.
    """

    type: str
    message: str
    traceback: str | None = None
    at: float | None = None
    attempt: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view; ``at`` and ``attempt`` only when known."""
        view: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "traceback": self.traceback,
        }
        if self.at is not None:
            view["at"] = iso(self.at)
        if self.attempt is not None:
            view["attempt"] = self.attempt
        return view


@dataclass(frozen=True, slots=True)
class RowLimits:
    """What a row stores for flow control; every field None when the task has none."""

    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None
    rate_limit: int | None = None
    rate_period: float | None = None
    unique_key: str | None = None

    @property
    def claim_limited(self) -> bool:
        """Whether the claim must count this task against a concurrency or rate limit."""
        return self.concurrency_key is not None or self.rate_key is not None

    def to_dict(self) -> dict[str, Any] | None:
        """A JSON-ready view; None for a task without flow control."""
        if self == NO_LIMITS:
            return None
        rate = None
        if self.rate_limit is not None and self.rate_period is not None:
            rate = {"limit": self.rate_limit, "period": self.rate_period}
        return {
            "concurrency_key": self.concurrency_key,
            "concurrency": self.concurrency_limit,
            "rate_key": self.rate_key,
            "rate": rate,
            "unique_key": self.unique_key,
        }


NO_LIMITS = RowLimits()


@dataclass(slots=True)
class NewTask:
    """A task about to be inserted; arguments are already encoded as JSON text."""

    id: str
    name: str
    queue: str
    args_json: str
    kwargs_json: str
    priority: int
    max_attempts: int
    run_at: float
    created_at: float
    idempotency_key: str | None = None
    timeout: float | None = None
    """Seconds a run may take; None: the registered task's ``timeout``."""
    limits: RowLimits = NO_LIMITS
    """Flow control stored with the row (see :mod:`tasks.limits`)."""

    trace_context: str | None = None
    """The enqueuer's trace context as JSON text (:mod:`tasks.tracing`); None: none."""


@dataclass(slots=True)
class TaskRecord:
    """A task as stored: the source of truth for its state."""

    id: str
    name: str
    queue: str
    state: State
    args: list[Any]
    kwargs: dict[str, Any]
    priority: int
    attempts: int
    max_attempts: int
    run_at: float
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    progress: Progress = field(default_factory=Progress)
    result: Any = None
    error: ErrorInfo | None = None
    idempotency_key: str | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    version: int = 1
    errors: list[ErrorInfo] = field(default_factory=list)
    """Every failed attempt's error, oldest first (``error`` is the latest)."""
    snoozes: int = 0
    """How often the task put itself back with :class:`tasks.Retry` (no attempt spent)."""
    timeout: float | None = None
    """This task's own timeout in seconds; None: the registered task's."""
    limits: RowLimits = NO_LIMITS
    """The flow control it was enqueued with (see :mod:`tasks.limits`)."""

    trace_context: str | None = None
    """The enqueuer's trace context as JSON text (:mod:`tasks.tracing`); None: none."""
    workflow_id: str | None = None
    """The workflow this task is a step of (:mod:`tasks.workflows`); None: a plain task."""
    blockers: int = 0
    """Steps it needs that have not succeeded yet (while ``waiting``)."""
    receives: str | None = None
    """What its first argument is, read when it runs: ``result``, ``results``,
    ``failure`` (see :mod:`tasks.workflows`); None: its arguments as stored."""

    @property
    def done(self) -> bool:
        """True once the task reached a terminal state."""
        return self.state in TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (timestamps as ISO 8601 UTC strings)."""
        return {
            "id": self.id,
            "name": self.name,
            "queue": self.queue,
            "state": self.state.value,
            "args": self.args,
            "kwargs": self.kwargs,
            "priority": self.priority,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "progress": {
                "current": self.progress.current,
                "total": self.progress.total,
                "message": self.progress.message,
            },
            "result": self.result,
            "error": None
            if self.error is None
            else {
                "type": self.error.type,
                "message": self.error.message,
                "traceback": self.error.traceback,
            },
            "errors": [error.to_dict() for error in self.errors],
            "snoozes": self.snoozes,
            "timeout": self.timeout,
            "limits": self.limits.to_dict(),
            "idempotency_key": self.idempotency_key,
            "run_at": iso(self.run_at),
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "version": self.version,
            "workflow_id": self.workflow_id,
        }


@dataclass(frozen=True, slots=True)
class Finish:
    """A state change that ends one run of a task.

    ``state`` is SUCCEEDED, FAILED or QUEUED (a retry when ``run_at`` is set, a
    release that gives the attempt back when ``refund`` is true). A ``snooze``
    (:class:`tasks.Retry`) is a refunded requeue that also counts one more
    snooze. An ``error`` is stored as the latest and appended to the task's
    error history, unless the change is refunded.
    """

    task_id: str
    owner: str
    state: State
    result_json: str | None = None
    error: ErrorInfo | None = None
    run_at: float | None = None
    refund: bool = False
    progress: Progress | None = None
    snooze: bool = False
    workflow_step: bool = False
    """The task is a workflow step: its end may make other steps due (others are woken)."""


def iso(ts: float | None) -> str | None:
    """Format a Unix timestamp as ISO 8601 UTC, or pass None through."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class _IdGenerator:
    """Time-ordered ids: 12 hex digits of milliseconds, then 20 of counter/random.

    Ids sort by creation time, which gives newest-first keyset paging for free.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0

    def __call__(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms
                self._seq += 1
            else:
                self._last_ms = ms
                self._seq = int.from_bytes(os.urandom(6), "big") >> 8
            tail = (self._seq << 40) | int.from_bytes(os.urandom(5), "big")
            return f"{ms:012x}{tail & ((1 << 80) - 1):020x}"


new_id = _IdGenerator()
