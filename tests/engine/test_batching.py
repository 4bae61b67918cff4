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
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from quart import Quart

from tasks import Tasks
from tasks.errors import StoreUnavailableError, WriteRejectedError
from tasks.model import Finish, NewTask, State, TaskRecord, new_id
from tasks.store import Store, create_store
from tasks.store.batching import WriteRequest
from tasks.store.sqlite import SQLiteStore
from tests.conftest import eventually


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


async def test_a_failing_call_fails_alone_and_the_rest_of_its_batch_commits(
    database_url: str,
) -> None:
    store = _BatchSpy(database_url)
    store.sizes = []
    await store.open()
    try:
        queued = _task()
        await store.insert([queued])
        first = _task()
        clash = _task(task_id=first.id)  # same primary key: this call cannot commit
        keyed = _task(key="k-1")
        outcomes = await asyncio.gather(
            store.insert([first]),
            store.insert([_task(), keyed]),
            store.claim("owner-a", ["default"], 10, 30),
            store.insert([clash, _task(key="k-2")]),
            return_exceptions=True,
        )
        # Tried together, then (after the clash) once more one call at a time.
        assert store.sizes[-1] == 4, "the four calls should have shared one transaction"
        *committed, failed = outcomes
        assert isinstance(failed, WriteRejectedError), failed
        assert all(isinstance(o, list) for o in committed), committed
        claimed = committed[2]
        assert len(claimed) == 4  # it sees the inserts applied before it
        assert await store.get(first.id) is not None
        # Nothing of the failed call exists: its idempotency key is still free.
        [again] = await store.insert([_task(key="k-2")])
        assert again.created
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
        Finish(cancelled, "me", State.SUCCEEDED, result_json="4"),  # asked to stop meanwhile
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
    assert (records[cancelled].state, records[cancelled].result) == (State.CANCELLING, None)
    assert (records[held[2]].state, records[held[2]].attempts) == (State.QUEUED, 0)


async def test_a_slot_freed_during_a_claim_is_claimed_with_its_outcome_never_beyond_the_slots(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one claim waits to commit, a slot freed meanwhile is claimed at once, in the
    transaction that commits that slot's outcome, and the process never holds more
    running tasks than it has slots."""
    tasks = Tasks(database_url=database_url, concurrency=2, poll_interval=0.1)
    release = {n: asyncio.Event() for n in range(6)}
    started: list[int] = []

    @tasks.task(name="held", max_attempts=1)
    async def held(n: int) -> int:
        started.append(n)
        await release[n].wait()
        return n

    gate, gated = asyncio.Event(), asyncio.Event()
    armed = False
    batches: list[list[str]] = []
    running_after_commit: list[int] = []
    real_run_batch, real_claim = SQLiteStore._run_batch, SQLiteStore.claim
    claims_in_flight = 0

    async def counting_claim(self: SQLiteStore, *args: Any) -> list[TaskRecord]:
        nonlocal claims_in_flight
        claims_in_flight += 1
        try:
            return await real_claim(self, *args)
        finally:
            claims_in_flight -= 1

    async def spying_run_batch(self: SQLiteStore, batch: Sequence[WriteRequest]) -> list[Any]:
        if armed and not gated.is_set() and any(r.kind == "claim" for r in batch):
            gated.set()
            await gate.wait()  # the first claim after arming waits here
        results = await real_run_batch(self, batch)
        batches.append([r.kind for r in batch])
        running_after_commit.append(len((await self.list(state=State.RUNNING)).tasks))
        return results

    monkeypatch.setattr(SQLiteStore, "_run_batch", spying_run_batch)
    monkeypatch.setattr(SQLiteStore, "claim", counting_claim)
    app = Quart(__name__)
    tasks.init_app(app)
    async with app.test_app():
        handles = await tasks.enqueue_many([held.call(n) for n in range(6)])
        await eventually(lambda: _true(len(started) == 2))
        first, second = started
        armed = True
        release[first].set()  # its slot frees: a claim for it waits at the gate
        await asyncio.wait_for(gated.wait(), 10)
        before = len(batches)
        release[second].set()  # freed while that claim is in flight
        await eventually(lambda: _true(claims_in_flight == 2))
        gate.set()
        await eventually(lambda: _true(len(started) == 4))
        # The second slot's outcome and the claim for it shared one transaction.
        assert ["finish", "claim"] in [sorted(kinds, reverse=True) for kinds in batches[before:]]
        for n in range(6):
            release[n].set()
        assert [await h.result(10) for h in handles] == list(range(6))
    assert max(running_after_commit) <= 2, running_after_commit


async def _true(value: bool) -> bool:
    return value
