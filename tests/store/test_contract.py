"""The Store protocol, pinned for every backend (see tasks/store/base.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tasks.errors import StoreUnavailableError, WriteRejectedError
from tasks.model import ErrorInfo, Finish, NewTask, Progress, State, TaskRecord, new_id
from tasks.store import Inserted, Store
from tasks.store.postgres import PostgresStore
from tasks.summary import ELLIPSIS, PREVIEW_CHARS, TEXT_CHARS, Excerpt
from tests.conftest import eventually, postgres_url_or_skip, with_query
from tests.store.conftest import StoreFactory

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


# -- insert and read -----------------------------------------------------------


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


# -- claim -----------------------------------------------------------------------


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


# -- finish ----------------------------------------------------------------------


async def test_finish_success(store: Store) -> None:
    task_id = (await add(store))[0]
    running = await claim_one(store)
    before = time.time()
    applied = await store.finish(
        [Finish(task_id, OWNER, State.SUCCEEDED, result_json='{"ok": 1}', progress=Progress(3, 3))]
    )
    assert applied == [True]
    record = await must_get(store, task_id)
    assert record.state is State.SUCCEEDED
    assert record.result == {"ok": 1}
    assert record.error is None
    assert record.progress == Progress(3, 3, None)
    assert record.finished_at is not None
    assert record.finished_at >= before
    assert record.started_at == running.started_at
    assert record.attempts == 1
    assert (record.lease_owner, record.lease_expires_at) == (None, None)
    assert record.version == running.version + 1


async def test_finish_failure(store: Store) -> None:
    task_id = (await add(store))[0]
    running = await claim_one(store)
    error = ErrorInfo("ValueError", "bad input", "Traceback ...")
    assert await store.finish([Finish(task_id, OWNER, State.FAILED, error=error)]) == [True]
    record = await must_get(store, task_id)
    assert record.state is State.FAILED
    assert record.error == error
    assert record.result is None
    assert record.finished_at is not None
    assert record.started_at == running.started_at
    assert record.attempts == 1
    assert record.lease_owner is None
    assert record.version == running.version + 1


async def test_finish_retry_later(store: Store) -> None:
    task_id = (await add(store, max_attempts=3))[0]
    running = await claim_one(store)
    later = time.time() + 3600
    error = ErrorInfo("TimeoutError", "slow", None)
    change = Finish(task_id, OWNER, State.QUEUED, error=error, run_at=later)
    assert await store.finish([change]) == [True]
    record = await must_get(store, task_id)
    assert record.state is State.QUEUED
    assert record.run_at == later
    assert record.attempts == 1  # the attempt counts
    assert record.error == error
    assert (record.started_at, record.finished_at) == (None, None)
    assert (record.lease_owner, record.lease_expires_at) == (None, None)
    assert record.version == running.version + 1
    assert await store.claim(OWNER, ["default"], 1, LEASE) == []  # not due yet


async def test_finish_release_refunds_attempt_and_keeps_error(store: Store) -> None:
    task_id = (await add(store, max_attempts=3))[0]
    await claim_one(store)
    error = ErrorInfo("OSError", "disk", "tb")
    retry_now = Finish(task_id, OWNER, State.QUEUED, error=error, run_at=time.time() - 1)
    assert await store.finish([retry_now]) == [True]
    second = await claim_one(store)
    assert second.attempts == 2
    run_at = second.run_at

    assert await store.finish([Finish(task_id, OWNER, State.QUEUED, refund=True)]) == [True]
    record = await must_get(store, task_id)
    assert record.state is State.QUEUED
    assert record.attempts == 1
    assert record.error == error  # a release does not erase why the last attempt failed
    assert record.run_at == run_at
    assert (record.started_at, record.finished_at, record.lease_owner) == (None, None, None)
    assert record.version == second.version + 1


async def test_finish_applies_only_for_the_owner_of_a_running_task(store: Store) -> None:
    mine, stolen, cancelled = await add(store, 3)
    await store.claim(OWNER, ["default"], 3, LEASE)
    await store.cancel(cancelled)
    before = await must_get(store, stolen)

    applied = await store.finish(
        [
            Finish(mine, OWNER, State.SUCCEEDED, result_json="1"),
            Finish(stolen, "someone-else", State.SUCCEEDED, result_json="2"),
            Finish(cancelled, OWNER, State.SUCCEEDED, result_json="3"),
            Finish(new_id(), OWNER, State.SUCCEEDED),
        ]
    )
    assert applied == [True, False, False, False]
    assert await store.get(stolen) == before
    record = await must_get(store, cancelled)
    assert record.state is State.CANCELLING  # asked to stop: only a confirmed cancel applies
    assert record.result is None
    # finished already: a second finish of the same task does not apply either
    assert await store.finish([Finish(mine, OWNER, State.FAILED)]) == [False]
    assert (await must_get(store, mine)).state is State.SUCCEEDED


async def test_concurrent_finishes_report_per_call(store: Store) -> None:
    ids = await add(store, 6)
    await store.claim(OWNER, ["default"], 6, LEASE)
    results = await asyncio.gather(
        *(
            store.finish([Finish(task_id, OWNER if n % 2 == 0 else "x", State.SUCCEEDED)])
            for n, task_id in enumerate(ids)
        )
    )
    assert results == [[n % 2 == 0] for n in range(6)]


async def test_two_finishes_of_one_task_in_one_batch_only_one_applies(store: Store) -> None:
    task_id = (await add(store))[0]
    await claim_one(store)
    results = await asyncio.gather(  # submitted together: one transaction
        store.finish([Finish(task_id, OWNER, State.SUCCEEDED, result_json="1")]),
        store.finish([Finish(task_id, OWNER, State.FAILED, error=ErrorInfo("E", "m"))]),
    )
    assert sorted(r[0] for r in results) == [False, True]
    record = await must_get(store, task_id)
    assert record.state is (State.SUCCEEDED if results[0] == [True] else State.FAILED)


# -- progress, leases ------------------------------------------------------------


async def test_progress_only_for_the_owner_while_running(store: Store) -> None:
    task_id = (await add(store))[0]
    await store.set_progress(task_id, OWNER, Progress(1, 10, "queued?"))
    assert (await must_get(store, task_id)).progress == Progress(0, None, None)

    await claim_one(store)
    await store.set_progress(task_id, OWNER, Progress(2.5, 10, "working"))
    assert (await must_get(store, task_id)).progress == Progress(2.5, 10, "working")
    await store.set_progress(task_id, "intruder", Progress(9, 10, "nope"))
    assert (await must_get(store, task_id)).progress == Progress(2.5, 10, "working")

    # several reports in one batch: the last one wins
    await asyncio.gather(
        *(store.set_progress(task_id, OWNER, Progress(n, 10, f"step {n}")) for n in range(5))
    )
    assert (await must_get(store, task_id)).progress == Progress(4, 10, "step 4")

    await store.finish([Finish(task_id, OWNER, State.SUCCEEDED)])
    await store.set_progress(task_id, OWNER, Progress(7, 10, "late"))
    assert (await must_get(store, task_id)).progress == Progress(4, 10, "step 4")


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


# -- cancel and retry ------------------------------------------------------------


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


# -- listing and counting --------------------------------------------------------


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


async def test_list_pages_newest_first_with_filters(store: Store) -> None:
    a_ids = await add(store, 13, name="a")
    b_ids = await add(store, 8, name="b")
    claimed = await store.claim(OWNER, ["default"], 5, LEASE)  # the 5 oldest "a"
    await store.finish([Finish(claimed[0].id, OWNER, State.SUCCEEDED)])
    every = a_ids + b_ids
    state_of = {r.id: r.state for r in await store.get_many(every)}

    def expected(state: State | None = None, name: str | None = None) -> list[str]:
        pool = {"a": a_ids, "b": b_ids, None: every}[name]
        return sorted((i for i in pool if state is None or state_of[i] is state), reverse=True)

    for limit in (1, 4, 8, 50):
        assert await collect(store, limit) == expected()
        assert await collect(store, limit, state=State.QUEUED) == expected(State.QUEUED)
        assert await collect(store, limit, name="a") == expected(name="a")
        assert await collect(store, limit, name="b", state=State.QUEUED) == b_ids[::-1]
        assert await collect(store, limit, state=State.RUNNING, name="a") == expected(
            State.RUNNING, "a"
        )
        assert await collect(store, limit, state=State.FAILED) == []
        assert await collect(store, limit, summaries=True) == expected()
        assert await collect(store, limit, summaries=True, state=State.RUNNING, name="a") == (
            expected(State.RUNNING, "a")
        )

    exact = await store.list(name="b", limit=8)  # exactly one full page: no next cursor
    assert [r.id for r in exact.tasks] == b_ids[::-1]
    assert exact.next_cursor is None
    first = await store.list(name="b", limit=4)
    second = await store.list(name="b", limit=4, cursor=first.next_cursor)
    assert second.next_cursor is None
    assert [r.id for r in first.tasks + second.tasks] == b_ids[::-1]
    assert (await store.list(name="nobody")).tasks == []


async def test_summaries_carry_sizes_and_bounded_prefixes(store: Store) -> None:
    big_args = json.dumps(["\u00e9" * 3000, 1], ensure_ascii=False)  # 2 bytes per character
    small_id = (await add(store, name="small"))[0]
    big = dataclasses.replace(new_task(key="k" * 300), args_json=big_args)
    await store.insert([big])
    running = await claim_one(store)  # the older one: "small"
    assert running.id == small_id
    await store.set_progress(small_id, OWNER, Progress(1, 4.0, "p" * 500))
    error = ErrorInfo("E" * 300, "m" * 500, "traceback")
    result = json.dumps({"rows": list(range(2000))})
    await store.finish([Finish(small_id, OWNER, State.FAILED, result_json=result, error=error)])

    page = await store.list_summaries()
    assert [s.id for s in page.tasks] == [big.id, small_id]
    assert page.next_cursor is None
    for summary in page.tasks:
        assert await store.get_summary(summary.id) == summary
        record = await must_get(store, summary.id)
        for field in ("name", "queue", "state", "priority", "attempts", "max_attempts", "version"):
            assert getattr(summary, field) == getattr(record, field), field
        assert (summary.run_at, summary.created_at) == (record.run_at, record.created_at)
        assert (summary.started_at, summary.finished_at) == (record.started_at, record.finished_at)
        assert summary.kwargs == Excerpt(2, "{}")
        assert not summary.kwargs.truncated

    big_summary, small_summary = page.tasks
    assert big_summary.args == Excerpt(len(big_args.encode()), big_args[:PREVIEW_CHARS])
    assert big_summary.args.truncated
    assert big_summary.result is None
    assert big_summary.error is None
    assert big_summary.idempotency_key == "k" * (TEXT_CHARS - 1) + ELLIPSIS
    assert small_summary.args == Excerpt(6, "[1, 2]")
    assert not small_summary.args.truncated
    assert small_summary.result == Excerpt(len(result), result[:PREVIEW_CHARS])
    assert small_summary.result.truncated
    assert small_summary.error == ErrorInfo(
        "E" * (TEXT_CHARS - 1) + ELLIPSIS, "m" * (TEXT_CHARS - 1) + ELLIPSIS, None
    )
    assert small_summary.progress == Progress(1, 4, "p" * (TEXT_CHARS - 1) + ELLIPSIS)
    assert small_summary.idempotency_key is None
    assert await store.get_summary(new_id()) is None


async def test_summary_texts_of_exactly_the_bound_are_kept_whole(store: Store) -> None:
    task_id = (await add(store))[0]
    await claim_one(store)
    await store.set_progress(task_id, OWNER, Progress(0, None, "x" * TEXT_CHARS))
    summary = await store.get_summary(task_id)
    assert summary is not None
    assert summary.progress.message == "x" * TEXT_CHARS


async def test_counts(store: Store) -> None:
    assert await store.count_by_state() == dict.fromkeys(State, 0)
    assert await store.count_by_name() == {}
    assert await store.count_queued() == 0

    await add(store, 4, name="a")
    await add(store, 2, name="b")
    await add(store, 1, name="b", run_at=time.time() + 3600)  # waiting counts as queued
    claimed = await store.claim(OWNER, ["default"], 3, LEASE)  # three "a"
    await store.finish(
        [
            Finish(claimed[0].id, OWNER, State.SUCCEEDED),
            Finish(claimed[1].id, OWNER, State.FAILED, error=ErrorInfo("E", "m")),
        ]
    )
    b_task = (await store.list(name="b", limit=1)).tasks[0]
    await store.cancel(b_task.id)

    assert await store.count_by_state() == {
        State.QUEUED: 3,
        State.RUNNING: 1,
        State.CANCELLING: 0,
        State.SUCCEEDED: 1,
        State.FAILED: 1,
        State.CANCELLED: 1,
    }
    zero = dict.fromkeys(State, 0)
    assert await store.count_by_name() == {
        "a": {**zero, State.QUEUED: 1, State.RUNNING: 1, State.SUCCEEDED: 1, State.FAILED: 1},
        "b": {**zero, State.QUEUED: 2, State.CANCELLED: 1},
    }
    assert await store.count_queued() == 3


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


# -- group commit ----------------------------------------------------------------


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


# -- PostgreSQL only -------------------------------------------------------------


async def test_postgres_open_error_names_server_not_password() -> None:
    store = PostgresStore("postgresql://alice:s3cr%3Dt@127.0.0.1:1/somedb", pool_size=1)
    with pytest.raises(StoreUnavailableError) as caught:
        await store.open()
    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "somedb" in message
    assert "s3cr" not in message
    assert "s3cr" not in repr(store)


async def test_postgres_stores_unstorable_messages_cleaned(postgres_schema_url: str) -> None:
    """PostgreSQL text holds no NUL and no lone surrogate: such messages are cleaned,
    not allowed to fail the batch (and every other write in it)."""
    store = PostgresStore(postgres_schema_url, pool_size=2)
    await store.open()
    try:
        task_id = (await add(store))[0]
        await claim_one(store)
        await store.set_progress(task_id, OWNER, Progress(1, 2, "nul\x00 here"))
        assert (
            await must_get(store, task_id)
        ).progress.message == "nul\N{REPLACEMENT CHARACTER} here"
        error = ErrorInfo("OSError", "no file b'\udcff'\x00", "tb \udcff")
        assert await store.finish([Finish(task_id, OWNER, State.FAILED, error=error)]) == [True]
        stored = (await must_get(store, task_id)).error
        assert stored == ErrorInfo(
            "OSError", "no file b'\\udcff'\N{REPLACEMENT CHARACTER}", "tb \\udcff"
        )
        with pytest.raises(ValueError, match="NUL"):
            await store.insert([new_task(name="bad\x00name")])
    finally:
        await store.close()


async def test_postgres_concurrent_starters_migrate_once(postgres_schema_url: str) -> None:
    stores = [PostgresStore(postgres_schema_url, pool_size=1) for _ in range(6)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        conn = await asyncpg.connect(postgres_schema_url)
        try:
            rows = await conn.fetch("SELECT version, name FROM tasks_schema_migrations")
        finally:
            await conn.close()
        assert [(r["version"], r["name"]) for r in rows] == [
            (1, "0001_initial.sql"),
            (2, "0002_cancelling.sql"),
        ]
        await add(stores[0])
        assert await stores[-1].count_queued() == 1
    finally:
        for s in stores:
            await s.close()


async def test_postgres_new_work_from_another_instance(postgres_schema_url: str) -> None:
    listener = PostgresStore(postgres_schema_url, pool_size=2)
    writer = PostgresStore(postgres_schema_url, pool_size=2)
    await listener.open()
    await writer.open()
    try:
        woke = asyncio.Event()
        listener.on_new_work(woke.set)

        async def listening() -> bool:
            return listener.listening

        await eventually(listening, timeout=10, interval=0.005)
        assert not woke.is_set()
        await writer.insert([new_task()])
        await asyncio.wait_for(woke.wait(), timeout=10)

        # a retry of a failed task is new work too
        task_id = (await claim_one(writer)).id
        failure = Finish(task_id, OWNER, State.FAILED, error=ErrorInfo("E", "m"))
        assert await writer.finish([failure]) == [True]
        woke.clear()
        retried = await writer.retry(task_id)
        assert retried is not None
        assert retried.state is State.QUEUED
        await asyncio.wait_for(woke.wait(), timeout=10)
    finally:
        await writer.close()
        await listener.close()


async def test_postgres_insert_in_callers_transaction(postgres_schema_url: str) -> None:
    store = PostgresStore(postgres_schema_url, pool_size=2)
    await store.open()
    conn = await asyncpg.connect(postgres_schema_url)
    try:
        woke = asyncio.Event()
        store.on_new_work(woke.set)

        async def listening() -> bool:
            return store.listening

        await eventually(listening, timeout=10, interval=0.005)

        rolled_back = new_task()
        transaction = conn.transaction()
        await transaction.start()
        assert await store.insert_in(conn, [rolled_back]) == [Inserted(rolled_back.id, True)]
        await transaction.rollback()
        assert await store.get(rolled_back.id) is None

        committed, keyed = new_task(), new_task(key="tx-key")
        async with conn.transaction():
            result = await store.insert_in(conn, [committed, keyed])
            assert result == [Inserted(committed.id, True), Inserted(keyed.id, True)]
        assert (await must_get(store, committed.id)).state is State.QUEUED
        await asyncio.wait_for(woke.wait(), timeout=10)  # notified on commit

        duplicate = new_task(key="tx-key")
        assert await store.insert_in(conn, [duplicate]) == [Inserted(keyed.id, False)]
        assert await store.count_queued() == 2
    finally:
        await conn.close()
        await store.close()


async def _terminate(admin: asyncpg.Connection, application_name: str, listen: bool) -> int:
    pids = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
        " AND pid <> pg_backend_pid() AND (query LIKE 'LISTEN%') = $2",
        application_name,
        listen,
    )
    for row in pids:
        await admin.execute("SELECT pg_terminate_backend($1)", row["pid"])
    return len(pids)


async def test_postgres_survives_lost_connections(postgres_schema_url: str) -> None:
    app_name = f"tasks-test-{uuid.uuid4().hex[:8]}"
    url = with_query(postgres_schema_url, application_name=app_name)
    store = PostgresStore(url, pool_size=3)
    await store.open()
    admin = await asyncpg.connect(postgres_schema_url)
    try:
        woke = asyncio.Event()
        store.on_new_work(woke.set)

        async def listening() -> bool:
            return store.listening

        await eventually(listening, timeout=10, interval=0.005)
        accepted = set(await add(store, 3))

        # Pool connections die: a write either fails loudly or is committed.
        assert await _terminate(admin, app_name, listen=False) >= 1

        async def write_works() -> bool:
            try:
                accepted.update(await add(store))
            except StoreUnavailableError:
                return False
            return True

        await eventually(write_works, timeout=10, interval=0.01)
        assert len(await store.get_many(sorted(accepted))) == len(accepted)

        # The listening connection dies: it comes back and wakes everyone once.
        woke.clear()
        assert await _terminate(admin, app_name, listen=True) == 1

        async def relistening() -> bool:
            return woke.is_set() and store.listening

        await eventually(relistening, timeout=15, interval=0.01)
        woke.clear()
        other = PostgresStore(postgres_schema_url, pool_size=1)
        await other.open()
        try:
            await add(other)
        finally:
            await other.close()
        await asyncio.wait_for(woke.wait(), timeout=10)
    finally:
        await admin.close()
        await store.close()


class TcpProxy:
    """Forwards a local port to the PostgreSQL server; ``stop`` is an outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
            self._writers.discard(writer)


async def test_postgres_outage_fails_writes_loudly_then_recovers(
    postgres_schema_url: str,
) -> None:
    parts = urlsplit(postgres_schema_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    url = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    store = PostgresStore(url, pool_size=2, connect_timeout=2)
    await store.open()
    try:
        woke = asyncio.Event()
        store.on_new_work(woke.set)

        async def listening() -> bool:
            return store.listening

        async def not_listening() -> bool:
            return not store.listening

        await eventually(listening, timeout=10, interval=0.005)
        before = set(await add(store, 2))

        await proxy.stop()  # the server is gone
        lost = new_task()
        with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{proxy.port}"):
            await store.insert([lost])
        with pytest.raises(StoreUnavailableError):
            await store.claim(OWNER, ["default"], 1, LEASE)
        with pytest.raises(StoreUnavailableError):
            await store.get(lost.id)
        await eventually(not_listening, timeout=10, interval=0.005)

        await proxy.start()  # the server is back, same address
        woke.clear()
        after: set[str] = set()

        async def write_works() -> bool:
            try:
                after.update(await add(store))
            except StoreUnavailableError:
                return False
            return True

        await eventually(write_works, timeout=10, interval=0.01)
        assert {r.id for r in await store.get_many([*before, *after, lost.id])} == before | after
        await eventually(listening, timeout=20, interval=0.01)
        await asyncio.wait_for(woke.wait(), timeout=10)  # woken once after reconnecting
    finally:
        await store.close()
        await proxy.stop()


def test_postgres_url_or_skip_skips_or_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKS_TEST_POSTGRES_URL", "postgresql://bob:pw@127.0.0.1:1/nothere")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=r"not reachable at .*127\.0\.0\.1:1\b"
    ) as skipped:
        postgres_url_or_skip()
    assert "pw" not in str(skipped.value)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"not reachable at .*127\.0\.0\.1:1\b"):
        postgres_url_or_skip()
