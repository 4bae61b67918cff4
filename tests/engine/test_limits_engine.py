"""Flow control through the engine: two runtimes on one store, as two processes would be.

Concurrency and rate limits hold across both runtimes, limited tasks never
hold up unlimited ones, a freed slot or an opened rate window is claimed
without waiting for the poll (the poll interval is set far beyond every
bound here), and unique tasks answer with the active task.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, cast

import pytest
from quart import Quart

from tasks import InvalidArgumentsError, State, Tasks, current_task
from tasks.compat import CeleryTasks
from tasks.limits import Rate
from tests.conftest import eventually

SLOW_POLL = 60.0
"""Far longer than any wait below: work must be found by wake-ups, not polls."""

running: dict[str, int] = {}
peak: dict[str, int] = {}
gate: dict[str, asyncio.Event] = {}


def make_tasks() -> Tasks:
    tasks = Tasks()

    @tasks.task(name="sync", concurrency=2, concurrency_key=lambda account, **_: account)
    async def sync(account: str, hold: float = 0.05) -> str:
        running[account] = running.get(account, 0) + 1
        peak[account] = max(peak.get(account, 0), running[account])
        try:
            await asyncio.sleep(hold)  # the work itself
        finally:
            running[account] -= 1
        return account

    @tasks.task(name="blocked", concurrency=1)
    async def blocked() -> str:
        await gate["blocked"].wait()
        return "released"

    @tasks.task(name="plain")
    async def plain(n: int) -> int:
        return n

    @tasks.task(name="mail", rate_limit="4/s")
    async def mail(n: int) -> float:
        record = await tasks.get(current_task().id)
        assert record.started_at is not None
        return record.started_at

    @tasks.task(name="report", unique=True)
    async def report(year: int) -> int:
        await gate["report"].wait()
        return year

    return tasks


async def serve(stack: AsyncExitStack, tasks: Tasks, url: str, **config: object) -> Quart:
    app = Quart(f"limits-{id(tasks)}")
    app.config.update(TASKS_DATABASE_URL=url, TASKS_POLL_INTERVAL=SLOW_POLL, **config)
    tasks.init_app(app)
    await stack.enter_async_context(cast(AbstractAsyncContextManager[Any], app.test_app()))
    return app


@pytest.fixture(autouse=True)
def _reset() -> None:
    running.clear()
    peak.clear()
    gate.clear()
    gate["blocked"] = asyncio.Event()
    gate["report"] = asyncio.Event()


async def test_concurrency_per_key_holds_across_two_runtimes(backend_url: str) -> None:
    one, two = make_tasks(), make_tasks()
    async with AsyncExitStack() as stack:
        await serve(stack, one, backend_url)
        await serve(stack, two, backend_url)
        handles = [await one.enqueue("sync", account) for account in ["a", "b"] * 10]
        results = [await h.result(30) for h in handles]
    assert results == ["a", "b"] * 10
    assert peak == {"a": 2, "b": 2}


async def test_limited_tasks_do_not_hold_up_unlimited_ones(backend_url: str) -> None:
    tasks = make_tasks()
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        blocked = [await tasks.enqueue("blocked") for _ in range(3)]
        plain = [await tasks.enqueue("plain", n) for n in range(20)]
        assert [await h.result(10) for h in plain] == list(range(20))
        states = sorted([(await tasks.get(h.id)).state.value for h in blocked])
        assert states == ["queued", "queued", "running"]
        waiting = await tasks.why_waiting(await tasks.get(blocked[2].id))
        assert waiting is not None
        assert waiting.reason == "concurrency_limit"
        assert "1 of 1" in waiting.detail
        gate["blocked"].set()
        # each freed slot is claimed at once: three in turn, well before a poll
        assert [await h.result(10) for h in blocked] == ["released"] * 3


async def test_rate_limit_spaces_starts_and_reopens_without_polling(backend_url: str) -> None:
    one, two = make_tasks(), make_tasks()
    async with AsyncExitStack() as stack:
        await serve(stack, one, backend_url)
        await serve(stack, two, backend_url)
        handles = [await one.enqueue("mail", n) for n in range(10)]
        starts = sorted([await h.result(15) for h in handles])
    for i, start in enumerate(starts):
        in_window = [s for s in starts[i:] if s < start + 1.0]
        assert len(in_window) <= 4, f"{len(in_window)} starts within 1 s from {start}"
    assert starts[-1] - starts[0] >= 2.0  # 10 starts at 4/s need at least two more windows


async def test_queue_cap_from_config(backend_url: str) -> None:
    tasks = make_tasks()
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url, TASKS_QUEUE_CONCURRENCY="default=2")
        handles = [await tasks.enqueue("sync", f"k{n}", hold=0.2) for n in range(6)]
        assert [await h.result(20) for h in handles] == [f"k{n}" for n in range(6)]
        late = await tasks.enqueue("blocked")
        behind = await tasks.enqueue("blocked")
        waiting = await tasks.why_waiting(await tasks.get(behind.id))
        assert waiting is not None
        assert waiting.reason in {"concurrency_limit", "ready"}
        gate["blocked"].set()
        await late.result(10)
        await behind.result(10)
    assert max(peak.values()) == 1
    del late


async def test_unique_task_answers_the_active_one_then_releases(backend_url: str) -> None:
    tasks = make_tasks()
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        first = await tasks.enqueue("report", 2026)
        again = await tasks.enqueue("report", 2026)
        other = await tasks.enqueue("report", 2025)
        assert first.created
        assert not again.created
        assert again.id == first.id
        assert other.created
        assert other.id != first.id
        keyed = await tasks.get_task("report").options(unique_key="x").enqueue(1)
        same_key = await tasks.get_task("report").options(unique_key="x").enqueue(2)
        assert same_key.id == keyed.id
        gate["report"].set()
        assert await first.result(10) == 2026
        after = await tasks.enqueue("report", 2026)
        assert after.created
        assert after.id != first.id
        assert await after.result(10) == 2026
        assert (await tasks.get(first.id)).state is State.SUCCEEDED


def test_impossible_limits_fail_at_registration() -> None:
    tasks = Tasks()
    with pytest.raises(ValueError, match="concurrency must be a positive integer"):
        tasks.task(concurrency=0)
    with pytest.raises(ValueError, match="rate_limit must look like"):
        tasks.task(rate_limit="fast")
    with pytest.raises(ValueError, match="concurrency_key needs concurrency"):
        tasks.task(concurrency_key=lambda x: x)
    with pytest.raises(ValueError, match="rate_key needs rate_limit"):
        tasks.task(rate_key=lambda x: x)


async def test_bad_keys_at_enqueue_store_nothing(backend_url: str) -> None:
    tasks = Tasks()

    @tasks.task(name="keyed", concurrency=1, concurrency_key=lambda item: item["account"])
    async def keyed(item: dict[str, Any]) -> None:
        return None

    @tasks.task(name="free")
    async def free() -> None:
        return None

    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        with pytest.raises(InvalidArgumentsError, match="concurrency_key function of task keyed"):
            await tasks.enqueue("keyed", {"no account": 1})
        with pytest.raises(InvalidArgumentsError, match="must be a string or an integer"):
            await tasks.enqueue("keyed", {"account": [1]})
        with pytest.raises(InvalidArgumentsError, match="has no concurrency limit"):
            await tasks.get_task("free").options(concurrency_key="a").enqueue()
        assert (await tasks.list()).tasks == []


@pytest.mark.parametrize(
    ("given", "count", "period"),
    [
        ("10/s", 10, 1.0),
        ("100/m", 100, 60.0),
        ("3/10s", 3, 10.0),
        ("1/d", 1, 86400.0),
        (5, 5, 1.0),
        ("7", 7, 1.0),
    ],
)
def test_rate_limit_spelling_follows_celery(given: str | int, count: int, period: float) -> None:
    tasks = Tasks()
    celery = CeleryTasks(tasks)

    @celery.task(name="celery_rated", rate_limit=given)
    def rated() -> None:
        return None

    assert tasks.get_task("celery_rated").limits.rate == Rate(count, period)


async def test_a_slot_freed_in_one_process_is_taken_by_another_at_once(backend_url: str) -> None:
    # One concurrency slot shared by queues "a" and "b"; only `one` serves "a" and only
    # `two` serves "b". When the task on "a" ends, `two` must hear of the freed slot:
    # its poll is a minute away.
    one, two = make_tasks(), make_tasks()
    async with AsyncExitStack() as stack:
        await serve(stack, one, backend_url, TASKS_QUEUES="a")
        await serve(stack, two, backend_url, TASKS_QUEUES="b")
        blocked = one.get_task("blocked")
        first = await blocked.options(queue="a").enqueue()
        second = await blocked.options(queue="b").enqueue()

        async def first_running() -> bool:
            return (await one.get(first.id)).state is State.RUNNING

        await eventually(first_running)
        waiting = await two.why_waiting(await two.get(second.id))
        assert waiting is not None
        assert waiting.reason == "concurrency_limit"
        # Let `two`'s poll pause grow past the bound below: only a wake-up can meet it.
        dispatcher = two.runtime.dispatcher
        assert dispatcher is not None

        async def paused_long() -> bool:
            return dispatcher.poll_pause >= 5.0

        await eventually(paused_long, timeout=30)
        gate["blocked"].set()
        assert await first.result(10) == "released"
        assert await second.result(3) == "released"
