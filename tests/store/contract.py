"""Helpers of the store contract suite: new tasks, claims, reclaims and paging."""

from __future__ import annotations

import time
from typing import Any

from tasks.model import NO_LIMITS, NewTask, RowLimits, TaskRecord, new_id
from tasks.store import Store
from tests.conftest import eventually

OWNER = "worker-1"


LEASE = 30.0


def new_task(
    name: str = "jobs.add",
    *,
    queue: str = "default",
    priority: int = 0,
    max_attempts: int = 1,
    run_at: float | None = None,
    key: str | None = None,
    timeout: float | None = None,
    limits: RowLimits = NO_LIMITS,
) -> NewTask:
    now = time.time()
    return NewTask(
        id=new_id(),
        name=name,
        queue=queue,
        args_json="[1, 2]",
        kwargs_json="{}",
        priority=priority,
        max_attempts=max_attempts,
        run_at=now if run_at is None else run_at,
        created_at=now,
        idempotency_key=key,
        timeout=timeout,
        limits=limits,
    )


async def add(store: Store, count: int = 1, **fields: Any) -> list[str]:
    """Insert ``count`` tasks and return their ids, oldest first."""
    tasks = [new_task(**fields) for _ in range(count)]
    inserted = await store.insert(tasks)
    assert all(i.created for i in inserted)
    return [i.id for i in inserted]


async def claim_one(
    store: Store, owner: str = OWNER, lease: float = LEASE, queue: str = "default"
) -> TaskRecord:
    claimed = await store.claim(owner, [queue], 1, lease)
    assert len(claimed) == 1
    return claimed[0]


async def must_get(store: Store, task_id: str) -> TaskRecord:
    record = await store.get(task_id)
    assert record is not None
    return record


async def wait_for_reclaim(store: Store, message: str = "worker lost") -> tuple[set[str], set[str]]:
    """Poll ``reclaim_expired`` (deadline-bounded) until it reclaims something."""
    requeued: set[str] = set()
    failed: set[str] = set()

    async def reclaimed() -> bool:
        result = await store.reclaim_expired(message)
        requeued.update(result.requeued)
        failed.update(result.failed)
        return bool(requeued or failed)

    await eventually(reclaimed, timeout=10, interval=0.005)
    return requeued, failed


async def collect(
    store: Store, limit: int, *, summaries: bool = False, **filters: Any
) -> list[str]:
    seen: list[str] = []
    cursor = None
    listing = store.list_summaries if summaries else store.list
    for _ in range(1000):
        page = await listing(limit=limit, cursor=cursor, **filters)
        assert len(page.tasks) <= limit
        seen += [r.id for r in page.tasks]
        if page.next_cursor is None:
            return seen
        assert page.tasks
        assert page.next_cursor == page.tasks[-1].id
        cursor = page.next_cursor
    raise AssertionError("paging does not end")
