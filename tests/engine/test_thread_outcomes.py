"""Blocking tasks whose thread outlives a cancel or a timeout.

A thread cannot be killed. The task keeps its lease and stays ``cancelling``
(or ``running``) until the body has returned, so a retry never overlaps the
earlier run; the pool starts a thread in the stuck one's place, so capacity
stays as configured; and a timeout counts from the body's start, not from
the wait for a free thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from quart import Quart

from tasks import InvalidStateError, State
from tests.conftest import eventually
from tests.engine import sample_app
from tests.engine.sample_app import tasks

TIMEOUT_OVERRUN = 1.0
"""Seconds a task is kept waiting for a thread: longer than thread_quick's 0.5 s timeout."""


@pytest.fixture(autouse=True)
def _reset() -> None:
    sample_app.calls.clear()
    sample_app.release.clear()


@pytest.fixture
async def app(backend_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Quart]:
    threads = getattr(request, "param", 2)
    app = sample_app.create_app(backend_url, concurrency=2, threads=threads, shutdown_timeout=1)
    try:
        async with app.test_app():
            yield app
    finally:
        sample_app.release.set()  # let stuck threads go


async def state_of(task_id: str) -> State:
    return (await tasks.get(task_id)).state


async def test_a_cancelled_thread_task_is_cancelling_until_its_body_returns(app: Quart) -> None:
    handle = await sample_app.stubborn.enqueue()
    await eventually(lambda: _async(("stubborn-start", handle.id) in sample_app.calls))
    record = await tasks.cancel(handle.id)
    assert record.state == State.CANCELLING
    with pytest.raises(InvalidStateError, match="still stopping"):
        await tasks.retry(handle.id)
    assert await state_of(handle.id) == State.CANCELLING  # its body still runs

    sample_app.release.set()
    await eventually(lambda: _is(handle.id, State.CANCELLED))
    await tasks.retry(handle.id)
    assert await handle.result(10) == 1  # attempts start over with the retry
    assert [kind for kind, _ in sample_app.calls] == [
        "stubborn-start",
        "stubborn-end",
        "stubborn-start",
        "stubborn-end",
    ]


async def test_stuck_threads_are_replaced_so_capacity_stays(app: Quart) -> None:
    stuck = [await sample_app.stubborn_timeout.enqueue() for _ in range(2)]
    pool = tasks.runtime.executors.threads
    await eventually(lambda: _async(pool.abandoned_count == 2))
    for handle in stuck:  # timed out, but held until their bodies return
        assert await state_of(handle.id) == State.RUNNING
    assert await (await sample_app.thread_quick.enqueue()).result(10) == "quick"
    assert pool.thread_count == 2

    sample_app.release.set()
    for handle in stuck:
        record = await handle.wait(10)
        assert record.state == State.FAILED
        assert record.error is not None
        assert record.error.type == "TaskTimeoutError"
    await eventually(lambda: _async(pool.abandoned_count == 0))


@pytest.mark.parametrize("app", [1], indirect=True)
async def test_a_timeout_counts_from_the_body_start_not_the_wait_for_a_thread(
    app: Quart,
) -> None:
    holder = await sample_app.stubborn.enqueue()  # holds the only pool thread
    await eventually(lambda: _async(("stubborn-start", holder.id) in sample_app.calls))
    waiting = await sample_app.thread_quick.enqueue()
    await eventually(lambda: _is(waiting.id, State.RUNNING))
    await asyncio.sleep(TIMEOUT_OVERRUN)  # the fault: no thread for longer than its timeout
    sample_app.release.set()
    assert await waiting.result(10) == "quick"
    assert await holder.result(10) == 1


async def _async(value: bool) -> bool:
    return value


async def _is(task_id: str, state: State) -> bool:
    return await state_of(task_id) == state
