"""Correctness of the batching on the write path: group commit, batched claims, batched finishes.

Each batching mechanism must keep the guarantees of one transaction per call:
a failed batch fails every caller in it and leaves nothing behind, claims never
hand out a task twice, and each finish in a batch applies only where its own
guard (running, held by its owner) holds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator

import pytest

from tasks.errors import StoreUnavailableError
from tasks.model import Finish, NewTask, State, new_id
from tasks.store import Store, create_store
from tasks.store.sqlite import SQLiteStore


def _task(task_id: str | None = None, key: str | None = None) -> NewTask:
    now = time.time()
    return NewTask(
        id=task_id or new_id(),
        name="noop",
        queue="default",
        args_json="[]",
        kwargs_json="{}",
        priority=0,
        max_attempts=3,
        run_at=now - 1,
        created_at=now,
        idempotency_key=key,
    )


@pytest.fixture
async def store(backend_url: str) -> AsyncIterator[Store]:
    s = create_store(backend_url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


class _BatchSpy(SQLiteStore):
    """Records how many requests each transaction held."""

    sizes: list[int]

    async def _run_batch(self, batch):  # type: ignore[no-untyped-def]
        self.sizes.append(len(batch))
        return await super()._run_batch(batch)


async def test_failed_batch_fails_every_caller_and_keeps_nothing(database_url: str) -> None:
    store = _BatchSpy(database_url)
    store.sizes = []
    await store.open()
    try:
        queued = _task()
        await store.insert([queued])
        first = _task()
        clash = _task(task_id=first.id)  # same primary key: the whole batch must fail
        keyed = _task(key="k-1")
        outcomes = await asyncio.gather(
            store.insert([first]),
            store.insert([_task(), keyed]),
            store.claim("owner-a", ["default"], 10, 30),
            store.insert([clash]),
            return_exceptions=True,
        )
        assert store.sizes[-1] == 4, "the four calls should have shared one transaction"
        assert all(isinstance(o, StoreUnavailableError) for o in outcomes), outcomes
        # Nothing of the failed batch exists; the claim in it did not happen.
        assert await store.get(first.id) is None
        assert await store.get(keyed.id) is None
        assert (await store.count_by_state())[State.QUEUED] == 1
        record = await store.get(queued.id)
        assert record is not None
        assert (record.state, record.attempts, record.lease_owner) == (State.QUEUED, 0, None)
        # The next batch works, and the idempotency key was not taken by the failed one.
        [again] = await store.insert([_task(key="k-1")])
        assert again.created
        claimed = await store.claim("owner-a", ["default"], 10, 30)
        assert {r.id for r in claimed} == {queued.id, again.id}
    finally:
        await store.close()


async def test_batch_that_cannot_begin_commits_nothing(database_url: str) -> None:
    store = SQLiteStore(database_url, busy_timeout=0.05)
    await store.open()
    blocker = sqlite3.connect(store.path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        pending = [_task(), _task()]
        outcomes = await asyncio.gather(
            *(store.insert([t]) for t in pending), return_exceptions=True
        )
        assert all(isinstance(o, StoreUnavailableError) for o in outcomes), outcomes
        blocker.execute("ROLLBACK")
        for t in pending:
            assert await store.get(t.id) is None
        after = _task()
        await store.insert([after])
        assert await store.get(after.id) is not None
    finally:
        blocker.close()
        await store.close()


async def test_concurrent_claims_never_hand_out_a_task_twice(backend_url: str) -> None:
    first, second = create_store(backend_url), create_store(backend_url)
    await first.open()
    await second.open()
    try:
        total = 300
        await first.insert([_task() for _ in range(total)])
        claimed: list[str] = []

        async def claimer(store: Store, owner: str) -> None:
            while True:
                records = await store.claim(owner, ["default"], 7, 30)
                if not records:
                    return
                assert all(r.lease_owner == owner and r.state == State.RUNNING for r in records)
                claimed.extend(r.id for r in records)

        await asyncio.gather(
            *(claimer(first, f"first-{n}") for n in range(4)),
            *(claimer(second, f"second-{n}") for n in range(4)),
        )
        assert len(claimed) == total
        assert len(set(claimed)) == total
        assert (await first.count_by_state())[State.RUNNING] == total
    finally:
        await first.close()
        await second.close()


async def test_finish_batch_applies_each_rows_own_guard(store: Store) -> None:
    tasks = [_task() for _ in range(5)]
    await store.insert(tasks)
    claimed = await store.claim("me", ["default"], 4, 30)
    assert len(claimed) == 4
    held = [r.id for r in claimed]
    never_claimed = next(t.id for t in tasks if t.id not in held)
    cancelled = held[3]
    await store.cancel(cancelled)
    changes = [
        Finish(held[0], "me", State.SUCCEEDED, result_json="1"),
        Finish(held[1], "someone-else", State.SUCCEEDED, result_json="2"),  # not its owner
        Finish(never_claimed, "me", State.SUCCEEDED, result_json="3"),  # still queued
        Finish(cancelled, "me", State.SUCCEEDED, result_json="4"),  # cancelled meanwhile
        Finish(held[2], "me", State.QUEUED, refund=True),
    ]
    # Separate concurrent calls share one transaction; one call holds two changes.
    answers = await asyncio.gather(
        store.finish(changes[:2]), store.finish([changes[2]]), store.finish(changes[3:])
    )
    assert answers == [[True, False], [False], [False, True]]
    records = {r.id: r for r in await store.get_many([t.id for t in tasks])}
    assert (records[held[0]].state, records[held[0]].result) == (State.SUCCEEDED, 1)
    assert (records[held[1]].state, records[held[1]].lease_owner) == (State.RUNNING, "me")
    assert records[never_claimed].state == State.QUEUED
    assert records[never_claimed].result is None
    assert (records[cancelled].state, records[cancelled].result) == (State.CANCELLED, None)
    assert (records[held[2]].state, records[held[2]].attempts) == (State.QUEUED, 0)
