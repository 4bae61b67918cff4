"""Why a task is not running yet: steps it needs, delayed, held back by a limit, or next in line.

:func:`why_waiting` answers for one record from the store's current usage
(:meth:`~tasks.store.base.Store.limit_usage`); ``GET /tasks/<id>``, the
dashboard and ``python -m tasks show`` report it. The answer is a snapshot:
by the time it is read the task may have started.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tasks.model import State, TaskRecord, iso
from tasks.store import Store

Reason = Literal[
    "dependencies", "delayed", "concurrency_limit", "rate_limit", "queue_limit", "ready"
]


@dataclass(frozen=True, slots=True)
class Waiting:
    """One queued task's reason to wait, in words and as a code."""

    reason: Reason
    detail: str
    until: float | None = None
    """When the wait ends, where known (a delay, a rate window)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``until`` as ISO 8601 UTC)."""
        return {"reason": self.reason, "detail": self.detail, "until": iso(self.until)}


async def why_waiting(
    store: Store, record: TaskRecord, caps: Mapping[str, int], now: float | None = None
) -> Waiting | None:
    """Why ``record`` waits; None unless it is queued or waiting.

    ``caps`` are this process's queue caps (``TASKS_QUEUE_CONCURRENCY``).
    A ``waiting`` workflow step waits for the steps it needs (``dependencies``,
    naming them). For a queued task the first reason that holds is given:
    delay, then the concurrency limit, the rate limit, the queue cap;
    ``ready`` means only a free worker is missing.
    """
    if record.state is State.WAITING:
        return await _dependencies(store, record)
    if record.state is not State.QUEUED:
        return None
    now = time.time() if now is None else now
    if record.run_at > now:
        return Waiting("delayed", f"delayed until {iso(record.run_at)}", record.run_at)
    limits = record.limits
    cap = caps.get(record.queue)
    if not limits.claim_limited and cap is None:
        return _ready()
    usage = await store.limit_usage(record)
    limit = limits.concurrency_limit
    if limits.concurrency_key is not None and limit is not None and usage.running >= limit:
        return Waiting(
            "concurrency_limit",
            f"{usage.running} of {limit} allowed tasks of {limits.concurrency_key!r} are running",
        )
    rate = limits.rate_limit
    if limits.rate_key is not None and rate is not None and usage.started >= rate:
        until = None if usage.reopens_in is None else now + usage.reopens_in
        return Waiting(
            "rate_limit",
            f"{usage.started} of {rate} allowed starts of {limits.rate_key!r}"
            f" in the last {limits.rate_period or 0:g} s",
            until,
        )
    if cap is not None and usage.queue_running >= cap:
        return Waiting(
            "queue_limit",
            f"{usage.queue_running} of {cap} allowed tasks of queue {record.queue!r} are running",
        )
    return _ready()


async def _dependencies(store: Store, record: TaskRecord) -> Waiting:
    inputs = await store.step_inputs(record.id)
    pending = [i.parent_id for i in inputs if i.kind == "needs" and i.state != "succeeded"]
    if pending:
        shown = ", ".join(pending[:3]) + (
            f" and {len(pending) - 3} more" if len(pending) > 3 else ""
        )
        return Waiting("dependencies", f"waits for {len(pending)} step(s) to succeed: {shown}")
    return Waiting("dependencies", "an error step: it runs if one of its steps fails")


def _ready() -> Waiting:
    return Waiting("ready", "due: it starts when a worker serving its queue is free")
