"""Store contract: inserts, idempotency keys, reads by id, group commit of inserts.

Every test runs against each backend (the ``store`` fixture, tests/store/conftest.py).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tasks.errors import StoreUnavailableError, WriteRejectedError
from tasks.model import NewTask, Progress, State, TaskRecord, new_id
from tasks.store import Inserted, Store
from tests.store.conftest import StoreFactory
from tests.store.contract import (
    add,
    must_get,
    new_task,
)


async def test_insert_and_get_round_trip_every_field(store: Store) -> None:
    now = time.time()
    task = NewTask(
        id=new_id(),
        name="mail.send",
        queue="emails",
        args_json='[1, "two", {"b": 1, "a": 2.5}, null]',
        kwargs_json='{"z": null, "a": [true, false], "big": 12345678901234567890}',
        priority=7,
        max_attempts=3,
        run_at=now - 1.25,
        created_at=now - 2.5,
        idempotency_key="round-trip-1",
    )
    assert await store.insert([task]) == [Inserted(task.id, True)]

    record = await must_get(store, task.id)
    assert record == TaskRecord(
        id=task.id,
        name="mail.send",
        queue="emails",
        state=State.QUEUED,
        args=[1, "two", {"b": 1, "a": 2.5}, None],
        kwargs={"z": None, "a": [True, False], "big": 12345678901234567890},
        priority=7,
        attempts=0,
        max_attempts=3,
        run_at=now - 1.25,
        created_at=now - 2.5,
        started_at=None,
        finished_at=None,
        progress=Progress(0, None, None),
        result=None,
        error=None,
        idempotency_key="round-trip-1",
        lease_owner=None,
        lease_expires_at=None,
        version=1,
    )
    assert list(record.kwargs) == ["z", "a", "big"]  # the JSON is stored as written
    assert list(record.args[2]) == ["b", "a"]
    assert await store.get(new_id()) is None
    assert await store.get_many([]) == []
    other = (await add(store))[0]
    many = await store.get_many([task.id, other, new_id()])
    assert sorted(r.id for r in many) == sorted([task.id, other])


async def test_idempotency_key_returns_first_id(store: Store) -> None:
    first, second = new_task(key="once"), new_task(key="once")
    assert await store.insert([first]) == [Inserted(first.id, True)]
    assert await store.insert([second]) == [Inserted(first.id, False)]
    assert await store.get(second.id) is None

    a, b, plain = new_task(key="twice"), new_task(key="twice"), new_task()
    result = await store.insert([a, plain, b])
    assert result == [Inserted(a.id, True), Inserted(plain.id, True), Inserted(a.id, False)]
    assert await store.get(b.id) is None
    assert await store.count_queued() == 3


async def test_insert_nothing(store: Store) -> None:
    assert await store.insert([]) == []


async def test_group_commit_500_concurrent_inserts(store: Store) -> None:
    tasks = [new_task() for _ in range(500)]
    results = await asyncio.gather(*(store.insert([t]) for t in tasks))
    assert results == [[Inserted(t.id, True)] for t in tasks]
    assert await store.count_queued() == 500
    assert len(await store.get_many([t.id for t in tasks])) == 500


async def test_a_failing_call_in_a_batch_fails_alone_and_leaves_nothing(store: Store) -> None:
    existing = new_task()
    await store.insert([existing])
    duplicate = new_task()
    duplicate.id = existing.id  # violates the primary key: this call cannot commit
    good = [[new_task(), new_task()] for _ in range(5)]
    bad = [new_task(), duplicate]

    # Submitted together, so they share one transaction.
    results = await asyncio.gather(
        *(store.insert(batch) for batch in [*good[:3], bad, *good[3:]]), return_exceptions=True
    )
    assert isinstance(results[3], WriteRejectedError), results[3]
    assert all(isinstance(r, list) for n, r in enumerate(results) if n != 3), results
    assert await store.get(bad[0].id) is None  # nothing of the failed call is kept
    assert len(await store.get_many([t.id for batch in good for t in batch])) == 10
    assert await store.count_queued() == 11


async def test_closed_store_refuses_writes(store_factory: StoreFactory) -> None:
    other = await store_factory()
    await other.close()
    with pytest.raises(StoreUnavailableError):
        await other.insert([new_task()])
