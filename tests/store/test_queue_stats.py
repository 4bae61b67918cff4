"""Store contract: per-queue load (``queue_stats``) and the queue filter of listings.

Every test runs against each backend (the ``store`` fixture, tests/store/conftest.py).
"""

from __future__ import annotations

import time

import pytest

from tasks.model import Finish, State
from tasks.store import Store
from tasks.store.base import QueueStats
from tests.store.contract import OWNER, add, claim_one


async def test_queue_stats_count_waiting_and_held_tasks_per_queue(store: Store) -> None:
    assert await store.queue_stats() == []
    now = time.time()
    await add(store, run_at=now - 60, queue="mail")
    await add(store, 2, run_at=now - 5, queue="mail")
    await add(store, run_at=now + 3600, queue="reports")
    held = await claim_one(store, queue="mail")  # the oldest, run_at now - 60
    [done] = await add(store, queue="media")
    await claim_one(store, queue="media")
    await store.finish([Finish(done, OWNER, State.SUCCEEDED)])
    [stopping] = await add(store, queue="reports", run_at=now - 1)
    await claim_one(store, queue="reports")
    await store.cancel(stopping)  # running -> cancelling, still holds its slot

    stats = await store.queue_stats()

    assert held.queue == "mail"
    assert [s.queue for s in stats] == ["mail", "reports"]  # media has no live task
    mail, reports = stats
    assert (mail.queued, mail.running) == (2, 1)
    assert mail.oldest_run_at == pytest.approx(now - 5, abs=1e-3)
    assert reports == QueueStats("reports", 1, 1, pytest.approx(now + 3600, abs=1e-3))


async def test_listings_filter_by_queue(store: Store) -> None:
    mail = await add(store, 3, queue="mail")
    await add(store, 2, queue="media")
    await claim_one(store, queue="mail")

    page = await store.list(queue="mail")
    assert [r.id for r in page.tasks] == mail[::-1]
    queued = await store.list_summaries(queue="mail", state=State.QUEUED, limit=10)
    assert [s.id for s in queued.tasks] == mail[:0:-1]
    assert (await store.list(queue="none")).tasks == []
