"""Pydantic models of the HTTP API: they validate requests and generate the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictStr,
    model_validator,
)

StateName = Literal[
    "queued", "waiting", "running", "cancelling", "succeeded", "failed", "cancelled"
]
TASK_ID_PATTERN = "^[0-9a-f]{32}$"
MAX_DELAY = 10 * 365 * 24 * 3600.0
"""Longest accepted ``delay``: ten years (beyond it timestamps stop being useful)."""
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def whole_number(value: Any) -> Any:
    """``3.0`` as ``3``: JSON Schema counts a number with no fraction as an integer."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# Constraints first, the validator last: pydantic then documents them as JSON
# Schema keywords (minimum/maximum) on the integer, and still refuses booleans,
# strings and fractions.
Priority = Annotated[
    int, Strict(), Field(ge=INT32_MIN, le=INT32_MAX), BeforeValidator(whole_number)
]
MaxAttempts = Annotated[int, Strict(), Field(ge=1, le=1000), BeforeValidator(whole_number)]


def iso_text(value: Any) -> Any:
    """Refuse a number for a date-time (pydantic would read it as Unix seconds)."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time with an offset, as text")
    return value


RunAt = Annotated[AwareDatetime, BeforeValidator(iso_text)]
QueueName = Annotated[StrictStr, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
# One number type, not a union: bounds on a union come out as non-JSON-Schema "ge"/"le".
Delay = Annotated[float, Field(strict=True, ge=0, le=MAX_DELAY)]


class EnqueueRequest(BaseModel):
    """Body of ``POST /tasks``: which task to run, with which arguments and options."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    """Registered, HTTP-enabled task name."""
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    delay: Delay | None = None
    """Seconds to wait before the task may run."""
    priority: Priority | None = None
    """Higher runs first (default: the task's priority)."""
    max_attempts: MaxAttempts | None = None
    idempotency_key: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None
    """A second request with the same key returns the first task (200) instead of a new one."""
    unique_key: Annotated[StrictStr, Field(min_length=1, max_length=150)] | None = None
    """While a task of this name and key is queued or running, a request with the same
    key returns it (200) instead of a new one; released when it ends."""
    queue: QueueName | None = None
    """Queue to put the task in (default: the task's own); only workers serving it run it."""
    run_at: RunAt | None = None
    """When the task may run, ISO 8601 with an offset (``2026-12-01T09:00:00+01:00``);
    not together with ``delay``."""

    @model_validator(mode="after")
    def _one_start_time(self) -> EnqueueRequest:
        if self.delay is not None and self.run_at is not None:
            raise ValueError("give delay or run_at, not both")
        return self


class ListQuery(BaseModel):
    """Query string of ``GET /tasks``."""

    model_config = ConfigDict(extra="ignore")

    state: StateName | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 50
    cursor: Annotated[str, Field(pattern=TASK_ID_PATTERN)] | None = None
    """``next_cursor`` of the previous page."""


class RateOut(BaseModel):
    """A rate limit: at most ``limit`` starts in any ``period`` seconds."""

    limit: int
    period: float


class LimitsOut(BaseModel):
    """The flow control a task was enqueued with (keys are scoped by task name)."""

    concurrency_key: str | None
    concurrency: int | None
    """Tasks of ``concurrency_key`` that may run at once, across every process."""
    rate_key: str | None
    rate: RateOut | None
    unique_key: str | None
    """While this task is queued or running, enqueueing with this key returns it."""


class WaitingOut(BaseModel):
    """Why a queued task is not running yet (a snapshot)."""

    reason: Literal[
        "dependencies", "delayed", "concurrency_limit", "rate_limit", "queue_limit", "ready"
    ]
    detail: str
    until: str | None
    """When the wait ends, where known (ISO 8601 UTC)."""


class ProgressOut(BaseModel):
    """Progress the task reported last."""

    current: float
    total: float | None
    message: str | None


class ErrorInfoOut(BaseModel):
    """Why the task's last run failed."""

    type: str
    message: str
    traceback: str | None


class ErrorEntryOut(BaseModel):
    """One failed attempt's error, as kept in the task's error history."""

    type: str
    message: str
    traceback: str | None
    at: str | None = None
    """When the failure was recorded (ISO 8601 UTC)."""
    attempt: int | None = None
    """The attempt it ended."""


class TaskFields(BaseModel):
    """What a task and its summary share. Timestamps are ISO 8601 UTC strings."""

    id: str
    name: str
    queue: str
    state: StateName
    priority: int
    attempts: int
    max_attempts: int
    progress: ProgressOut
    idempotency_key: str | None
    run_at: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    version: int
    """Increases with every stored change; the ``id`` of its server-sent events."""


class TaskOut(TaskFields):
    """A task as stored. Timestamps are ISO 8601 UTC strings."""

    args: list[Any]
    kwargs: dict[str, Any]
    result: Any
    error: ErrorInfoOut | None
    """The latest error (the last item of ``errors``, or a lost worker's)."""
    errors: list[ErrorEntryOut]
    """Every failed attempt's error, oldest first (kept across manual retries)."""
    snoozes: int
    """How often the task put itself back with ``tasks.Retry`` (no attempt spent)."""
    timeout: float | None
    """This task's own timeout in seconds (``options(timeout=...)``); null: the task's."""
    limits: LimitsOut | None
    """Concurrency and rate limits and unique key; null: none."""
    waiting: WaitingOut | None = None
    """Only in ``GET /tasks/<id>`` of a queued task: why it waits."""
    workflow_id: str | None = None
    """The workflow it is a step of (``GET /tasks/workflows/<id>``); null: a plain task."""


class ExcerptOut(BaseModel):
    """The start of a stored JSON value (args, kwargs or result) and its full size."""

    bytes: int
    """Size of the whole JSON text, in UTF-8 bytes."""
    preview: str
    """Its first characters (not valid JSON when ``truncated``)."""
    truncated: bool


class SummaryErrorOut(BaseModel):
    """Why the task's last run failed (texts cut short; the traceback is in the full task)."""

    type: str
    message: str


class TaskSummaryOut(TaskFields):
    """A task as listed and streamed: its fields, payloads reduced to excerpts.

    Free texts are cut to 200 characters (ending in an ellipsis); ``url`` is
    where the full task is.
    """

    args: ExcerptOut
    kwargs: ExcerptOut
    result: ExcerptOut | None
    error: SummaryErrorOut | None
    url: str


class TaskPage(BaseModel):
    """One page of task summaries, newest first, bounded in rows and in bytes."""

    tasks: list[TaskSummaryOut]
    next_cursor: str | None
    """Pass as ``cursor`` to get the next page; null on the last page."""


class StateCounts(BaseModel):
    """How many tasks are in each state."""

    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


class Stats(BaseModel):
    """Task counts by state, and by task name then state."""

    by_state: StateCounts
    by_name: dict[str, StateCounts]


class ScheduleOut(BaseModel):
    """A periodic schedule: what it runs, when, and its stored state."""

    name: str
    task: str
    cron: str | None
    every: float | None
    """Seconds between slots, for interval schedules."""
    tz: str
    args: list[Any]
    kwargs: dict[str, Any]
    missed: Literal["latest", "all", "skip"]
    paused: bool
    last_slot: str | None
    """The latest slot fired (ISO 8601 UTC); null until a worker process saw the schedule."""
    next_slot: str | None
    """The next slot (ISO 8601 UTC); null while paused."""


class ScheduleList(BaseModel):
    """Every schedule the app declares."""

    schedules: list[ScheduleOut]


class WorkerOut(BaseModel):
    """A process that runs workers, from the worker registry. Timestamps are ISO 8601 UTC."""

    id: str
    """Its lease owner id, ``host:pid:random``."""
    host: str
    pid: int
    version: str
    """The quart-taskqueue version it runs."""
    queues: list[str]
    concurrency: int
    started_at: str
    heartbeat_at: str
    running: list[str]
    """Ids of the tasks it holds now (running, or asked to stop)."""
    status: Literal["alive", "lost"]
    """``lost``: it died (its liveness lock is free, or its heartbeat is older than a lease
    where liveness cannot be told); its tasks are recovered by the others."""


class WorkerList(BaseModel):
    """Every registered worker process, oldest start first."""

    workers: list[WorkerOut]


class ErrorDetail(BaseModel):
    """What went wrong: a stable machine-readable code and a message for humans."""

    code: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the API has this shape."""

    error: ErrorDetail


class Health(BaseModel):
    """Liveness or readiness status."""

    status: str


class HeadersIn(BaseModel):
    """Optional request headers of the events stream."""

    last_event_id: str | None = None
    """The ``version`` of the last event received; the stream resumes after it."""
