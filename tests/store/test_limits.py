"""Contract: flow control enforced by the claim (concurrency, rate, queue caps, unique keys).

Every test runs on SQLite and PostgreSQL. The limits are stored with each row
(:class:`~tasks.model.RowLimits`); the claim admits tasks in claim order while
their limits have room and claims the tasks behind those it holds back.
"""

from __future__ import annotations

import asyncio
import time

from tasks.model import Finish, RowLimits, State
from tasks.store import Store
from tests.conftest import eventually
from tests.store.conftest import StoreFactory
from tests.store.contract import LEASE, OWNER, add, new_task


def conc(key: str, limit: int) -> RowLimits:
    return RowLimits(concurrency_key=key, concurrency_limit=limit)


def rate(key: str, limit: int, period: float) -> RowLimits:
    return RowLimits(rate_key=key, rate_limit=limit, rate_period=period)


async def succeed(store: Store, task_id: str, owner: str = OWNER) -> None:
    assert await store.finish([Finish(task_id, owner, State.SUCCEEDED, result_json="1")]) == [True]


async def test_concurrency_limit_holds_and_frees(store: Store) -> None:
    ids = await add(store, 5, limits=conc("sync", 2))
    first = await store.claim(OWNER, ["default"], 10, LEASE)
    assert [r.id for r in first] == ids[:2]  # in order, up to the limit
    assert await store.claim("other", ["default"], 10, LEASE) == []
    await succeed(store, ids[0])
    again = await store.claim("other", ["default"], 10, LEASE)
    assert [r.id for r in again] == [ids[2]]  # the freed slot, the next in order
    assert again[0].limits == conc("sync", 2)


async def test_keys_are_limited_separately(store: Store) -> None:
    a = await add(store, 3, limits=conc("sync:a", 1))
    b = await add(store, 3, limits=conc("sync:b", 1))
    claimed = await store.claim(OWNER, ["default"], 10, LEASE)
    assert sorted(r.id for r in claimed) == sorted([a[0], b[0]])


async def test_cancelling_task_keeps_its_slot(store: Store) -> None:
    ids = await add(store, 2, limits=conc("one", 1))
    [running] = await store.claim(OWNER, ["default"], 10, LEASE)
    cancelled = await store.cancel(running.id)
    assert cancelled is not None
    assert cancelled.state is State.CANCELLING
    assert await store.claim(OWNER, ["default"], 10, LEASE) == []
    assert await store.finish([Finish(running.id, OWNER, State.CANCELLED)]) == [True]
    assert [r.id for r in await store.claim(OWNER, ["default"], 10, LEASE)] == [ids[1]]


async def test_limited_tasks_do_not_block_unlimited_ones_behind_them(store: Store) -> None:
    limited = await add(store, 5, limits=conc("slow", 1), priority=5)
    plain = await add(store, 3)
    claimed = await store.claim(OWNER, ["default"], 10, LEASE)
    assert [r.id for r in claimed] == [limited[0], *plain]  # priority order within the limits


async def test_priority_orders_work_within_a_limit(store: Store) -> None:
    low = await add(store, 1, limits=conc("k", 1), priority=1)
    high = await add(store, 1, limits=conc("k", 1), priority=9)
    plain_low = await add(store, 1, priority=0)
    claimed = await store.claim(OWNER, ["default"], 1, LEASE)
    assert [r.id for r in claimed] == high
    claimed = await store.claim(OWNER, ["default"], 5, LEASE)
    assert [r.id for r in claimed] == plain_low  # the limited one waits for its key
    del low


async def test_a_full_key_does_not_hide_other_keys_behind_a_long_backlog(store: Store) -> None:
    await add(store, 200, limits=conc("busy", 1))
    [busy] = await store.claim(OWNER, ["default"], 1, LEASE)
    other = await add(store, 2, limits=conc("idle", 1))
    claimed = await store.claim(OWNER, ["default"], 3, LEASE)
    assert [r.id for r in claimed] == other[:1]
    assert busy.limits.concurrency_key == "busy"


async def test_concurrent_claimers_never_exceed_the_limit(store_factory: StoreFactory) -> None:
    stores = [await store_factory() for _ in range(3)]
    await add(stores[0], 60, limits=conc("shared", 3))
    running: dict[str, str] = {}
    peak = 0
    done = 0
    deadline = time.monotonic() + 60
    while done < 60:
        assert time.monotonic() < deadline, f"only {done} of 60 finished"
        batches = await asyncio.gather(
            *(s.claim(f"owner-{n}", ["default"], 4, LEASE) for n, s in enumerate(stores))
        )
        for n, batch in enumerate(batches):
            for record in batch:
                running[record.id] = f"owner-{n}"
        peak = max(peak, len(running))
        assert len(running) <= 3
        # finish one at a time, from whichever store claimed it
        for task_id, owner in list(running.items())[:2]:
            index = int(owner.rsplit("-", 1)[1])
            await succeed(stores[index], task_id, owner)
            del running[task_id]
            done += 1
    assert peak == 3


async def test_rate_limit_spaces_starts_by_window(store: Store) -> None:
    calls: list[float] = []
    store.on_limit_wait(calls.append)
    ids = await add(store, 5, limits=rate("mail", 2, 0.5))
    first = await store.claim(OWNER, ["default"], 10, LEASE)
    assert [r.id for r in first] == ids[:2]
    await succeed(store, ids[0])
    await succeed(store, ids[1])
    assert await store.claim(OWNER, ["default"], 10, LEASE) == []  # finished or not: 2 started
    assert calls, "the claim told when the window frees a start"
    assert first[0].started_at is not None
    assert calls[-1] >= first[0].started_at + 0.5 - 0.05
    later: list[str] = []

    async def claimed_more() -> bool:
        later.extend(r.id for r in await store.claim(OWNER, ["default"], 10, LEASE))
        return bool(later)

    await eventually(claimed_more, timeout=10)
    assert later == ids[2:4]
    record = await store.get(later[0])
    assert record is not None
    assert record.started_at is not None
    assert record.started_at >= first[0].started_at + 0.5  # no third start inside the window


async def test_rate_limit_counts_every_process(store_factory: StoreFactory) -> None:
    one, two = await store_factory(), await store_factory()
    await add(one, 6, limits=rate("api", 3, 3600))
    claimed = [
        *await one.claim("a", ["default"], 2, LEASE),
        *await two.claim("b", ["default"], 10, LEASE),
        *await one.claim("a", ["default"], 10, LEASE),
    ]
    assert len(claimed) == 3


async def test_queue_cap_across_claimers(store_factory: StoreFactory) -> None:
    one, two = await store_factory(), await store_factory()
    await add(one, 5, queue="mail")
    plain = await add(one, 2)
    caps = {"mail": 2}
    first = await one.claim("a", ["mail", "default"], 10, LEASE, caps)
    assert sorted(r.queue for r in first) == ["default", "default", "mail", "mail"]
    assert await two.claim("b", ["mail"], 10, LEASE, caps) == []
    mail = [r for r in first if r.queue == "mail"]
    await succeed(one, mail[0].id, "a")
    again = await two.claim("b", ["mail"], 10, LEASE, caps)
    assert len(again) == 1
    assert again[0].queue == "mail"
    del plain


async def test_unique_key_answers_the_active_task_until_it_ends(store: Store) -> None:
    unique = RowLimits(unique_key="report:2026")
    [first] = await store.insert([new_task(limits=unique)])
    [again, twin] = await store.insert([new_task(limits=unique), new_task(limits=unique)])
    assert first.created
    assert not again.created
    assert not twin.created
    assert again.id == twin.id == first.id
    [claimed] = await store.claim(OWNER, ["default"], 1, LEASE)
    [while_running] = await store.insert([new_task(limits=unique)])
    assert while_running.id == first.id
    assert not while_running.created
    await succeed(store, claimed.id)
    [after] = await store.insert([new_task(limits=unique)])
    assert after.created
    assert after.id != first.id


async def test_retry_waits_while_the_unique_key_is_taken(store: Store) -> None:
    unique = RowLimits(unique_key="sync:1")
    [first] = await store.insert([new_task(limits=unique)])
    [claimed] = await store.claim(OWNER, ["default"], 1, LEASE)
    assert await store.finish([Finish(claimed.id, OWNER, State.FAILED)]) == [True]
    [second] = await store.insert([new_task(limits=unique)])
    assert second.created
    refused = await store.retry(first.id)
    assert refused is not None
    assert refused.state is State.FAILED
    assert await store.cancel(second.id) is not None
    retried = await store.retry(first.id)
    assert retried is not None
    assert retried.state is State.QUEUED
