"""Pydantic models of the operations API: queues, activity, bulk retry and purge."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

TerminalStateName = Literal["succeeded", "failed", "cancelled"]
MAX_AGE = 10 * 365 * 24 * 3600.0
"""Longest ``older_than`` accepted: ten years."""


class QueueOut(BaseModel):
    """One queue's load now, and how many of its tasks finished in the last minute."""

    queue: str
    queued: int
    """Tasks waiting (due or delayed)."""
    running: int
    """Tasks held by a worker (running or being cancelled)."""
    oldest_queued_age: float | None
    """Seconds the oldest due queued task has waited; null when none is due."""
    oldest_run_at: str | None
    """Earliest ``run_at`` of its queued tasks (ISO 8601 UTC), due or not."""
    finished_last_minute: int
    """Tasks that reached a terminal state in the last 60 seconds (every process)."""


class QueueList(BaseModel):
    """Every queue with live tasks or tasks finished in the last minute, by name."""

    queues: list[QueueOut]


class ActivityQuery(BaseModel):
    """Query string of ``GET /tasks/activity``."""

    model_config = ConfigDict(extra="ignore")

    minutes: Annotated[int, Field(ge=1, le=1440)] = 15
    """How far back to look."""
    bucket: Annotated[int, Field(ge=1, le=3600)] = 10
    """Seconds per bucket, at least (widened to keep to 200 buckets)."""


class ActivityBucket(BaseModel):
    """Tasks that finished in one bucket, and how long those that ran waited to start."""

    start: str
    """Start of the bucket (ISO 8601 UTC)."""
    finished: int
    failed: int
    latency_mean: float | None
    """Mean seconds from due time to start; null when none of them ran."""
    latency_max: float | None


class Activity(BaseModel):
    """Throughput and start latency over the last minutes, oldest bucket first."""

    bucket_seconds: int
    buckets: list[ActivityBucket]


class RetryFailedRequest(BaseModel):
    """Body of ``POST /tasks/bulk/retry-failed``: which failed tasks to queue again."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None
    """Only tasks with this name (default: every failed task)."""


class RetryFailedOut(BaseModel):
    """How many failed tasks were queued again."""

    retried: int
    more: bool
    """True when more failed tasks matched than one call retries (call again)."""


class PurgeRequest(BaseModel):
    """Body of ``POST /tasks/bulk/purge``: finished tasks to delete."""

    model_config = ConfigDict(extra="forbid")

    states: Annotated[list[TerminalStateName], Field(min_length=1, max_length=3)]
    """Terminal states to delete."""
    older_than: Annotated[float, Field(strict=True, ge=0, le=MAX_AGE)]
    """Only tasks that finished more than this many seconds ago."""


class PurgeOut(BaseModel):
    """How many tasks were deleted."""

    deleted: int
