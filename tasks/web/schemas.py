"""Pydantic models of the HTTP API: they validate requests and generate the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

StateName = Literal["queued", "running", "cancelling", "succeeded", "failed", "cancelled"]
TASK_ID_PATTERN = "^[0-9a-f]{32}$"
MAX_DELAY = 10 * 365 * 24 * 3600.0
"""Longest accepted ``delay``: ten years (beyond it timestamps stop being useful)."""
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class EnqueueRequest(BaseModel):
    """Body of ``POST /tasks``: which task to run, with which arguments and options."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    """Registered, HTTP-enabled task name."""
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    delay: Annotated[StrictFloat | StrictInt, Field(ge=0, le=MAX_DELAY)] | None = None
    """Seconds to wait before the task may run."""
    priority: Annotated[StrictInt, Field(ge=INT32_MIN, le=INT32_MAX)] | None = None
    """Higher runs first (default: the task's priority)."""
    max_attempts: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None
    idempotency_key: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None
    """A second request with the same key returns the first task (200) instead of a new one."""


class ListQuery(BaseModel):
    """Query string of ``GET /tasks``."""

    model_config = ConfigDict(extra="ignore")

    state: StateName | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 50
    cursor: Annotated[str, Field(pattern=TASK_ID_PATTERN)] | None = None
    """``next_cursor`` of the previous page."""


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


class TaskOut(BaseModel):
    """A task as stored. Timestamps are ISO 8601 UTC strings."""

    id: str
    name: str
    queue: str
    state: StateName
    args: list[Any]
    kwargs: dict[str, Any]
    priority: int
    attempts: int
    max_attempts: int
    progress: ProgressOut
    result: Any
    error: ErrorInfoOut | None
    idempotency_key: str | None
    run_at: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    version: int
    """Increases with every stored change; the ``id`` of its server-sent events."""


class TaskPage(BaseModel):
    """One page of tasks, newest first."""

    tasks: list[TaskOut]
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
