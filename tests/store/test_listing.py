"""Store contract: listings, summaries and counts.

Every test runs against each backend (the ``store`` fixture, tests/store/conftest.py).
"""

from __future__ import annotations

import dataclasses
import json
import time

from tasks.model import ErrorInfo, Finish, Progress, State, new_id
from tasks.store import Store
from tasks.summary import ELLIPSIS, PREVIEW_CHARS, TEXT_CHARS, Excerpt
from tests.store.contract import (
    LEASE,
    OWNER,
    add,
    claim_one,
    collect,
    must_get,
    new_task,
)


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
        State.WAITING: 0,
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
