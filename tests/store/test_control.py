"""Store contract: cancel, retry and purge of finished tasks.

Every test runs against each backend (the ``store`` fixture, tests/store/conftest.py).
"""

from __future__ import annotations

import math
import time

import pytest

from tasks.model import ErrorInfo, Finish, Progress, State, new_id
from tasks.store import Store
from tests.store.contract import (
    LEASE,
    OWNER,
    add,
    claim_one,
    must_get,
)


async def test_cancel(store: Store) -> None:
    running, queued, done = await add(store, 3)
    assert (await claim_one(store)).id == running

    cancelled = await store.cancel(queued)
    assert cancelled is not None
    assert cancelled.state is State.CANCELLED
    assert cancelled.finished_at is not None

    record = await store.cancel(running)
    assert record is not None
    assert record.state is State.CANCELLING  # until its owner confirms the run has ended
    assert record.lease_owner == OWNER
    assert record.finished_at is None
    assert record.started_at is not None
    assert await store.finish([Finish(running, OWNER, State.CANCELLED)]) == [True]
    confirmed = await must_get(store, running)
    assert confirmed.state is State.CANCELLED
    assert (confirmed.lease_owner, confirmed.lease_expires_at) == (None, None)
    assert confirmed.finished_at is not None

    finished = await claim_one(store)
    assert finished.id == done
    await store.finish([Finish(done, OWNER, State.SUCCEEDED, result_json="42")])
    before = await must_get(store, done)
    after = await store.cancel(done)
    assert after == before  # finished stays finished, untouched
    assert after is not None
    assert after.state is State.SUCCEEDED

    assert await store.cancel(queued) == cancelled  # cancelling twice changes nothing
    assert await store.cancel(new_id()) is None


async def test_retry(store: Store) -> None:
    failed, cancelled, succeeded, running, queued = await add(store, 5, max_attempts=2)
    await store.claim(OWNER, ["default"], 4, LEASE)
    await store.set_progress(failed, OWNER, Progress(5, 9, "half"))
    await store.finish(
        [
            Finish(failed, OWNER, State.FAILED, error=ErrorInfo("E", "m", "tb")),
            Finish(succeeded, OWNER, State.SUCCEEDED, result_json="1"),
        ]
    )
    await store.cancel(cancelled)
    assert await store.retry(cancelled) == await store.get(cancelled)  # still stopping: no retry
    await store.finish([Finish(cancelled, OWNER, State.CANCELLED)])

    for task_id in (failed, cancelled):
        old = await must_get(store, task_id)
        before = time.time()
        record = await store.retry(task_id)
        assert record is not None
        assert record.state is State.QUEUED
        assert record.attempts == 0
        assert record.run_at >= before
        assert (record.started_at, record.finished_at) == (None, None)
        assert (record.result, record.error) == (None, None)
        assert record.progress == Progress(0, None, None)
        assert record.version == old.version + 1
        assert await store.get(task_id) == record

    for task_id in (succeeded, running, queued):
        old = await must_get(store, task_id)
        assert await store.retry(task_id) == old
        assert await store.get(task_id) == old
    assert await store.retry(new_id()) is None


async def test_purge_finished_deletes_only_old_terminal_tasks(store: Store) -> None:
    old = await add(store, 5)
    await store.claim(OWNER, ["default"], 3, LEASE)
    await store.finish(
        [
            Finish(old[0], OWNER, State.SUCCEEDED),
            Finish(old[1], OWNER, State.FAILED, error=ErrorInfo("E", "m")),
        ]
    )
    await store.cancel(old[3])
    await store.cancel(old[4])
    finished = [await must_get(store, i) for i in (old[0], old[1], old[3], old[4])]
    cutoff = max(r.finished_at for r in finished if r.finished_at is not None)
    while time.time() <= cutoff:  # the clock must move past the cutoff (microseconds)
        pass
    young = (await add(store))[0]
    await store.cancel(young)
    running = old[2]
    waiting = (await add(store))[0]
    before = math.nextafter(cutoff, math.inf)

    assert await store.purge_finished(before, 3) == 3
    assert await store.purge_finished(before, 3) == 1
    assert await store.purge_finished(before, 3) == 0
    assert await store.get_many(old[:2] + old[3:]) == []
    assert {r.id for r in await store.get_many([young, running, waiting])} == {
        young,
        running,
        waiting,
    }


async def test_purge_finished_deletes_only_the_given_states(store: Store) -> None:
    ids = await add(store, 3)
    await store.claim(OWNER, ["default"], 2, LEASE)
    await store.finish(
        [
            Finish(ids[0], OWNER, State.SUCCEEDED),
            Finish(ids[1], OWNER, State.FAILED, error=ErrorInfo("E", "m")),
        ]
    )
    await store.cancel(ids[2])
    later = time.time() + 60

    assert await store.purge_finished(later, 10, {State.FAILED}) == 1
    assert await store.purge_finished(later, 10, set()) == 0
    with pytest.raises(ValueError, match="not queued, running ones"):
        await store.purge_finished(later, 10, {State.RUNNING, State.QUEUED, State.FAILED})
    assert sorted(r.id for r in await store.get_many(ids)) == sorted([ids[0], ids[2]])
    assert await store.purge_finished(later, 10, {State.CANCELLED, State.SUCCEEDED}) == 2
