"""Store contract: what the dashboard reads (finished tasks per queue and per time bucket,
summaries by id, pages newer than an id).

Every test runs against each backend (the ``store`` fixture, tests/store/conftest.py).
"""

from __future__ import annotations

import time

import pytest

from tasks.model import ErrorInfo, Finish, State
from tasks.store import Store
from tests.store.contract import OWNER, add, claim_one


async def finish_one(store: Store, queue: str, state: State = State.SUCCEEDED) -> str:
    record = await claim_one(store, queue=queue)
    error = ErrorInfo("ValueError", "no") if state is State.FAILED else None
    assert await store.finish([Finish(record.id, OWNER, state, error=error)]) == [True]
    return record.id


async def test_finished_by_queue_counts_terminal_tasks_since_a_time(store: Store) -> None:
    start = time.time() - 1
    assert await store.finished_by_queue(start) == {}
    await add(store, 3, queue="mail", run_at=start - 2)
    await add(store, 2, queue="media")
    await finish_one(store, "mail")
    await finish_one(store, "mail", State.FAILED)
    await finish_one(store, "media")
    [queued] = await add(store, queue="media")
    await store.cancel(queued)  # cancelled while queued: finished too
    await claim_one(store, queue="mail")  # still running: not counted

    assert await store.finished_by_queue(start) == {"mail": 2, "media": 2}
    assert await store.finished_by_queue(time.time() + 60) == {}


async def test_activity_buckets_finished_tasks_with_start_latency(store: Store) -> None:
    now = time.time()
    await add(store, 2, queue="mail", run_at=now - 3)
    await finish_one(store, "mail")
    await finish_one(store, "mail", State.FAILED)
    [queued] = await add(store, queue="mail")
    await store.cancel(queued)

    since = now - 600
    buckets = await store.activity(since, 10.0)

    [bucket] = buckets  # quiet buckets are left out
    assert bucket.start == pytest.approx(since + 590, abs=10)  # the bucket holding "now"
    assert bucket.start <= time.time() < bucket.start + 10 + 1
    assert (bucket.finished, bucket.failed) == (3, 1)
    # Due 3 s before the claim: the two that ran waited about that long to start.
    assert bucket.latency_mean is not None
    assert bucket.latency_max is not None
    assert 3 <= bucket.latency_mean <= bucket.latency_max < 30
    assert await store.activity(time.time() + 60, 10.0) == []


async def test_summaries_by_id_and_pages_newer_than_an_id(store: Store) -> None:
    ids = await add(store, 7, queue="mail")
    await add(store, queue="media")

    found = await store.get_summaries([ids[1], ids[4], ids[4], "f" * 32])
    assert [s.id for s in found] == [ids[4], ids[1]]
    assert await store.get_summaries([]) == []
    with pytest.raises(ValueError, match="at most 500"):
        await store.get_summaries([f"{n:032x}" for n in range(501)])

    newer = await store.list_summaries(queue="mail", after=ids[1], limit=3)
    assert [s.id for s in newer.tasks] == [ids[4], ids[3], ids[2]]  # newest first
    assert newer.next_cursor == ids[4]  # newer tasks exist: ask after this one
    last = await store.list_summaries(queue="mail", after=ids[4], limit=3)
    assert [s.id for s in last.tasks] == [ids[6], ids[5]]
    assert last.next_cursor is None
