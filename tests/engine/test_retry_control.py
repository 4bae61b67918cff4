"""Retry control: ``tasks.Retry`` snoozes (no attempt spent, bounded), the error history,
and per-enqueue timeouts (issue 16.6)."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from quart import Quart

from tasks import Retry, State, TaskEvent, Tasks, current_task
from tests.conftest import eventually

tasks = Tasks()
runs: Counter[str] = Counter()
hold = threading.Event()


@tasks.task(name="snooze_twice", max_attempts=1)
async def snooze_twice() -> int:
    """Snoozes on its first two runs, then returns its run count."""
    runs[current_task().id] += 1
    if runs[current_task().id] <= 2:
        raise Retry(delay=0, reason="not yet")
    return runs[current_task().id]


@tasks.task(name="thread_snooze", max_attempts=1)
def thread_snooze() -> str:
    """A plain-function task snoozing once (the thread-pool path)."""
    runs[current_task().id] += 1
    if runs[current_task().id] == 1:
        raise Retry(0.01)
    return "done"


@tasks.task(name="snooze_forever", max_attempts=3, max_snoozes=2)
async def snooze_forever() -> None:
    """Always asks to run later."""
    raise Retry(delay=0, reason="the upstream report is not ready")


@tasks.task(
    name="snooze_then_fail",
    max_attempts=3,
    retry_on=(OSError,),
    dont_retry_on=(Exception,),
    retry_backoff=0.01,
)
async def snooze_then_fail() -> None:
    """Snoozes once (``dont_retry_on`` does not stop it), then raises a ValueError."""
    runs[current_task().id] += 1
    if runs[current_task().id] == 1:
        raise Retry(delay=0)
    raise ValueError("bad row 7")


@tasks.task(name="fail_twice", max_attempts=3, retry_backoff=0.01)
async def fail_twice() -> int:
    """Fails on attempts 1 and 2 with different errors, then succeeds."""
    attempt = current_task().attempt
    if attempt == 1:
        raise KeyError("first")
    if attempt == 2:
        raise RuntimeError("second")
    return attempt


@tasks.task(name="wait_long", max_attempts=1)
async def wait_long() -> None:
    """Waits for an event that is never set: only a timeout ends it."""
    await asyncio.Event().wait()


@tasks.task(name="short_timeout", max_attempts=1, timeout=0.05)
async def short_timeout() -> str:
    """Outlives its registered timeout: fine only when the enqueue allowed longer."""
    await asyncio.sleep(0.3)
    return "finished"


@tasks.task(name="thread_hold", max_attempts=1)
def thread_hold() -> None:
    """Blocks its thread until the test releases it."""
    hold.wait(30)


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Quart]:
    app = Quart(__name__)
    app.config["TASKS_DATABASE_URL"] = database_url
    tasks.init_app(app)
    async with app.test_app():
        yield app


async def test_a_snooze_runs_again_without_spending_an_attempt(app: Quart) -> None:
    kinds: list[str] = []

    def listen(event: TaskEvent) -> None:
        kinds.append(event.kind)

    tasks.add_listener(listen)
    try:
        handle = await snooze_twice.enqueue()
        record = await tasks.wait(handle.id, timeout=30)
    finally:
        tasks.remove_listener(listen)
    assert (record.state, record.result) == (State.SUCCEEDED, 3)
    assert (record.attempts, record.max_attempts, record.snoozes) == (1, 1, 2)
    assert record.errors == []
    assert kinds.count("retried") == 2
    threaded = await tasks.wait((await thread_snooze.enqueue()).id, timeout=30)
    assert (threaded.state, threaded.result, threaded.snoozes) == (State.SUCCEEDED, "done", 1)


async def test_snoozing_past_max_snoozes_fails_the_task(app: Quart) -> None:
    record = await tasks.wait((await snooze_forever.enqueue()).id, timeout=30)
    assert record.state is State.FAILED
    assert (record.attempts, record.snoozes) == (1, 2)
    assert record.error is not None
    assert record.error.type == "TooManySnoozesError"
    assert "snoozed too often" in record.error.message
    assert "the upstream report is not ready" in record.error.message


async def test_retry_is_not_subject_to_retry_on_but_other_errors_are(app: Quart) -> None:
    record = await tasks.wait((await snooze_then_fail.enqueue()).id, timeout=30)
    assert record.state is State.FAILED
    assert (record.attempts, record.snoozes) == (1, 1)
    assert [(e.type, e.message, e.attempt) for e in record.errors] == [
        ("ValueError", "bad row 7", 1)
    ]


async def test_every_attempts_error_is_kept(app: Quart) -> None:
    record = await tasks.wait((await fail_twice.enqueue()).id, timeout=30)
    assert (record.state, record.result) == (State.SUCCEEDED, 3)
    assert [(e.type, e.attempt) for e in record.errors] == [("KeyError", 1), ("RuntimeError", 2)]
    assert all(e.at is not None and e.traceback for e in record.errors)
    assert "RuntimeError: second" in (record.errors[1].traceback or "")


async def test_a_per_enqueue_timeout_is_stored_and_applied(app: Quart) -> None:
    handle = await wait_long.options(timeout=0.1).enqueue()
    record = await tasks.wait(handle.id, timeout=30)
    assert record.timeout == 0.1
    assert record.state is State.FAILED
    assert record.error is not None
    assert (record.error.type, record.error.message) == (
        "TaskTimeoutError",
        "task ran past its timeout of 0.1 s",
    )
    longer = await short_timeout.options(timeout=30).enqueue()
    record = await tasks.wait(longer.id, timeout=30)
    assert (record.state, record.result, record.timeout) == (State.SUCCEEDED, "finished", 30)


async def test_a_thread_tasks_per_enqueue_timeout(app: Quart) -> None:
    hold.clear()
    pool = tasks.runtime.executors.threads
    before = pool.abandoned_count
    handle = await thread_hold.options(timeout=0.1).enqueue()
    try:
        # At the timeout the worker slot is freed and the thread abandoned; the
        # outcome is written once the body returns.
        async def timed_out() -> bool:
            return pool.abandoned_count > before

        await eventually(timed_out, timeout=30)
    finally:
        hold.set()
    record = await tasks.wait(handle.id, timeout=30)
    assert (record.state, record.timeout) == (State.FAILED, 0.1)
    assert record.error is not None
    assert record.error.type == "TaskTimeoutError"
    assert "ran past its timeout of 0.1 s" in record.error.message


def test_retry_refuses_a_bad_delay() -> None:
    with pytest.raises(ValueError, match="delay"):
        Retry(delay=-1)
    with pytest.raises(TypeError, match="delay"):
        Retry(delay="soon")  # type: ignore[arg-type]
