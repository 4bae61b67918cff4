"""Store contract: claims (order, limits, queues, concurrent claimers).

Every test runs against each backend (the ``store`` fixture, tests/store/conftest.py).
"""

from __future__ import annotations

import asyncio
import time

from tasks.model import State
from tasks.store import Store
from tests.store.conftest import StoreFactory
from tests.store.contract import (
    LEASE,
    OWNER,
    add,
    must_get,
)


async def test_claim_order_priority_then_run_at_and_not_before_due(store: Store) -> None:
    now = time.time()
    low_old = (await add(store, priority=0, run_at=now - 10))[0]
    high_late = (await add(store, priority=5, run_at=now - 1))[0]
    high_early = (await add(store, priority=5, run_at=now - 5))[0]
    mid = (await add(store, priority=1, run_at=now - 3))[0]
    future = (await add(store, priority=9, run_at=now + 3600))[0]

    claimed = await store.claim(OWNER, ["default"], 10, LEASE)
    assert [r.id for r in claimed] == [high_early, high_late, mid, low_old]
    assert (await must_get(store, future)).state is State.QUEUED
    assert await store.claim(OWNER, ["default"], 10, LEASE) == []


async def test_claim_limit_queues_and_fields(store: Store) -> None:
    ids = await add(store, 3, max_attempts=2)
    other_queue = (await add(store, queue="other"))[0]

    assert await store.claim(OWNER, ["default"], 0, LEASE) == []
    assert await store.claim(OWNER, [], 5, LEASE) == []
    before = time.time()
    claimed = await store.claim(OWNER, ["default"], 2, LEASE)
    after = time.time()
    assert [r.id for r in claimed] == ids[:2]  # equal priority and run_at order: by id
    for record in claimed:
        assert record.state is State.RUNNING
        assert record.attempts == 1
        assert record.lease_owner == OWNER
        assert record.started_at is not None
        assert before <= record.started_at <= after
        assert record.lease_expires_at is not None
        assert before + LEASE <= record.lease_expires_at <= after + LEASE
        assert record.version == 2
        assert await store.get(record.id) == record

    rest = await store.claim("worker-2", ["default", "missing"], 5, LEASE)
    assert [r.id for r in rest] == [ids[2]]
    assert (await must_get(store, other_queue)).state is State.QUEUED
    assert [r.id for r in await store.claim(OWNER, ["other"], 5, LEASE)] == [other_queue]


async def test_claim_limit_function_is_called_once_when_the_batch_is_cut(store: Store) -> None:
    ids = await add(store, 5)
    calls: list[str] = []
    free = 1

    def limit() -> int:
        calls.append("limit")
        return free

    claim = asyncio.ensure_future(store.claim(OWNER, ["default"], limit, LEASE))
    await asyncio.sleep(0)  # the claim is submitted; its batch is cut a turn later
    free = 3  # two more slots freed meanwhile
    claimed = await claim
    assert calls == ["limit"]
    assert [r.id for r in claimed] == ids[:3]

    def nothing() -> int:
        calls.append("nothing")
        return 0

    assert await store.claim(OWNER, ["default"], nothing, LEASE) == []
    assert calls == ["limit", "nothing"]
    assert (await store.count_by_state())[State.QUEUED] == 2


async def test_a_limit_function_that_raises_fails_only_its_claim(store: Store) -> None:
    def broken() -> int:
        raise RuntimeError("no limit today")

    ids = await add(store, 2)
    claim, insert = await asyncio.gather(
        store.claim(OWNER, ["default"], broken, LEASE), add(store, 1), return_exceptions=True
    )
    assert isinstance(claim, RuntimeError)
    assert "no limit today" in str(claim)
    assert isinstance(insert, list)
    assert await store.get(insert[0]) is not None
    claimed = await store.claim(OWNER, ["default"], 5, LEASE)
    assert {r.id for r in claimed} == {*ids, insert[0]}


async def test_concurrent_claimers_never_get_the_same_task(
    store: Store, store_factory: StoreFactory
) -> None:
    ids = set(await add(store, 200))
    stores = [store, *[await store_factory() for _ in range(3)]]

    results = await asyncio.gather(
        *(stores[n % 4].claim(f"worker-{n}", ["default"], 15, LEASE) for n in range(20))
    )
    claimed = [r.id for batch in results for r in batch]
    assert len(claimed) == len(set(claimed)), "a task was claimed twice"
    assert set(claimed) == ids
    for n, batch in enumerate(results):
        assert all(r.lease_owner == f"worker-{n}" for r in batch)
