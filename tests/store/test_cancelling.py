"""``cancelling``: a running task asked to stop, until its owner confirms or disappears."""

from __future__ import annotations

from tasks.model import Finish, State
from tasks.store import Reclaimed, Store
from tests.conftest import eventually
from tests.store.contract import OWNER, add, claim_one, must_get


async def test_a_cancel_request_is_seen_by_its_owner_only(store: Store) -> None:
    mine, theirs = await add(store, 2)
    await claim_one(store)
    await claim_one(store, owner="worker-2")
    assert await store.cancel_requests(OWNER) == []
    await store.cancel(mine)
    await store.cancel(theirs)
    assert await store.cancel_requests(OWNER) == [mine]
    assert await store.cancel_requests("worker-2") == [theirs]
    await store.finish([Finish(mine, OWNER, State.CANCELLED)])
    assert await store.cancel_requests(OWNER) == []


async def test_progress_and_a_second_cancel_while_cancelling(store: Store) -> None:
    [task_id] = await add(store)
    await claim_one(store)
    first = await store.cancel(task_id)
    assert first is not None
    again = await store.cancel(task_id)
    assert again == first  # nothing changes
    assert await store.renew_leases(OWNER, [task_id], 60) == set()


async def test_a_release_of_a_task_asked_to_stop_cancels_it(store: Store) -> None:
    [task_id] = await add(store, max_attempts=3)
    await claim_one(store)
    await store.cancel(task_id)
    assert await store.release(OWNER, [task_id]) == 1
    record = await must_get(store, task_id)
    assert (record.state, record.lease_owner, record.attempts) == (State.CANCELLED, None, 1)
    assert record.finished_at is not None


async def test_a_task_asked_to_stop_whose_owner_died_ends_cancelled(store: Store) -> None:
    [task_id] = await add(store, max_attempts=3)
    await claim_one(store, lease=0.05)
    await store.cancel(task_id)

    async def reclaimed() -> Reclaimed | None:
        result = await store.reclaim_expired("worker lost")
        return result if result.cancelled else None

    result = await eventually(reclaimed, timeout=10, interval=0.005)
    assert (result.requeued, result.failed, result.cancelled) == ([], [], [task_id])
    record = await must_get(store, task_id)
    assert (record.state, record.lease_owner) == (State.CANCELLED, None)
    assert await store.claim(OWNER, ["default"], 1, 30) == []
