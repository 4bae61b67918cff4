"""Store contract: leases (renewal, release, reclaim of expired leases).

Every test runs against each backend (the ``store`` fixture, tests/store/conftest.py).
"""

from __future__ import annotations

import time

from tasks.model import ErrorInfo, Finish, State, new_id
from tasks.store import Store
from tests.store.contract import (
    OWNER,
    add,
    claim_one,
    must_get,
    wait_for_reclaim,
)


async def test_renew_leases_returns_lost_ids(store: Store) -> None:
    kept, cancelled, others = await add(store, 3)
    first = await store.claim(OWNER, ["default"], 2, 5.0)
    await store.claim("worker-2", ["default"], 1, 5.0)
    await store.cancel(cancelled)
    unknown = new_id()

    before = time.time()
    # A task asked to stop still runs under its owner's lease until it confirms.
    lost = await store.renew_leases(OWNER, [kept, cancelled, others, unknown], 600.0)
    assert lost == {others, unknown}
    await store.finish([Finish(cancelled, OWNER, State.CANCELLED)])
    lost = await store.renew_leases(OWNER, [kept, cancelled, others, unknown], 600.0)
    assert lost == {cancelled, others, unknown}
    record = await must_get(store, kept)
    assert record.lease_expires_at is not None
    assert record.lease_expires_at >= before + 600.0
    assert record.lease_owner == OWNER
    assert first[0].id == kept
    other = await must_get(store, others)
    assert other.lease_expires_at is not None
    assert other.lease_expires_at < before + 600.0
    assert await store.renew_leases(OWNER, [], 600.0) == set()


async def test_release_refunds_attempts(store: Store) -> None:
    mine, theirs = await add(store, 2, max_attempts=2)
    await claim_one(store)
    await claim_one(store, owner="worker-2")
    assert await store.release(OWNER, [mine, theirs, new_id()]) == 1
    record = await must_get(store, mine)
    assert record.state is State.QUEUED
    assert record.attempts == 0
    assert (record.started_at, record.lease_owner, record.lease_expires_at) == (None, None, None)
    assert (await must_get(store, theirs)).state is State.RUNNING
    assert await store.release(OWNER, []) == 0
    again = await claim_one(store)
    assert (again.id, again.attempts) == (mine, 1)


async def test_reclaim_expired_requeues_then_fails_out_of_attempts(store: Store) -> None:
    task_id = (await add(store, max_attempts=2))[0]
    healthy = (await add(store))[0]
    await claim_one(store, lease=0.01)
    await claim_one(store, owner="healthy", lease=600)

    requeued, failed = await wait_for_reclaim(store)
    assert (requeued, failed) == ({task_id}, set())
    record = await must_get(store, task_id)
    assert record.state is State.QUEUED
    assert record.attempts == 1
    assert (record.started_at, record.lease_owner, record.lease_expires_at) == (None, None, None)
    assert record.run_at <= time.time()

    second = await claim_one(store, lease=0.01)
    assert (second.id, second.attempts) == (task_id, 2)
    requeued, failed = await wait_for_reclaim(store, "the worker died")
    assert (requeued, failed) == (set(), {task_id})
    record = await must_get(store, task_id)
    assert record.state is State.FAILED
    assert record.error == ErrorInfo("WorkerLostError", "the worker died", None)
    assert record.finished_at is not None
    assert record.lease_owner is None
    assert (await must_get(store, healthy)).state is State.RUNNING
