"""The engine through its Python API, on each backend (a real SQLite file, a PostgreSQL schema)."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from tasks import (
    InvalidArgumentsError,
    InvalidStateError,
    NotAcceptingError,
    PayloadError,
    State,
    TaskFailedError,
    UnknownTaskError,
)
from tasks.store import create_store
from tests.conftest import eventually
from tests.engine import sample_app
from tests.engine.sample_app import tasks


@pytest.fixture(autouse=True)
def _reset() -> None:
    sample_app.calls.clear()
    sample_app.gate.clear()
    sample_app.switch_on.clear()


@pytest.fixture
async def app(backend_url: str) -> AsyncIterator[Quart]:
    app = sample_app.create_app(backend_url, shutdown_timeout=2)
    async with app.test_app():
        yield app


async def test_enqueue_commits_before_returning(app: Quart, backend_url: str) -> None:
    handle = await sample_app.add.options(delay=60).enqueue(1, 2)
    other = create_store(backend_url)
    await other.open()
    try:
        record = await other.get(handle.id)
    finally:
        await other.close()
    assert record is not None
    assert (record.state, record.args, record.name) == (State.QUEUED, [1, 2], "add")


async def test_async_task_result_and_app_context(app: Quart) -> None:
    assert await (await sample_app.add.enqueue(2, 3)).result(5) == 5
    handle = await sample_app.whoami.enqueue()
    assert await handle.result(5) == {"app": "sample", "task": handle.id}


async def test_thread_task_runs_in_app_pool_with_context(app: Quart) -> None:
    handle = await sample_app.thread_whoami.enqueue()
    result = await handle.result(5)
    assert result["app"] == "sample"
    assert result["task"] == handle.id
    assert result["thread"].startswith("tasks-thread")


async def test_process_task_has_app_context_and_reports_progress(app: Quart) -> None:
    handle = await sample_app.process_whoami.enqueue()
    record = await handle.wait(60)
    assert record.state == State.SUCCEEDED, record.error
    assert record.result["app"] == "sample"
    assert record.result["task"] == handle.id
    assert record.result["pid"] != os.getpid()
    assert (record.progress.current, record.progress.message) == (1, "in a process")


async def test_process_task_past_timeout_is_killed(
    app: Quart, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    monkeypatch.setenv("SAMPLE_PID_FILE", str(pid_file))
    # The pool process was spawned at startup, before the variable was set.
    app_record = await (await sample_app.process_whoami.enqueue()).wait(60)
    tasks.runtime.executors._pool.stop()  # type: ignore[union-attr]
    tasks.runtime.executors._pool = None
    record = await (await sample_app.process_sleep.enqueue(30)).wait(60)
    assert app_record.state == State.SUCCEEDED
    assert record.state == State.FAILED
    assert record.error is not None
    assert record.error.type == "TaskTimeoutError"
    pid = int(pid_file.read_text())

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    await eventually(lambda: _async(gone()), timeout=10)


async def _async(value: Any) -> Any:
    return value


async def test_process_recycled_after_max_tasks(backend_url: str) -> None:
    app = sample_app.create_app(backend_url, process_max_tasks=1)
    async with app.test_app():
        first = await (await sample_app.process_whoami.enqueue()).result(60)
        second = await (await sample_app.process_whoami.enqueue()).result(60)
    assert first["pid"] != second["pid"]


async def test_process_death_is_an_explained_failure(app: Quart) -> None:
    record = await (await sample_app.process_die.enqueue()).wait(60)
    assert record.state == State.FAILED
    assert record.attempts == 2
    assert record.error is not None
    assert record.error.type == "WorkerLostError"
    assert "exit code 3" in record.error.message


async def test_failure_is_stored_logged_and_retried(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="tasks")
    ok = await (await sample_app.flaky.enqueue(2)).wait(10)
    assert (ok.state, ok.result, ok.attempts) == (State.SUCCEEDED, 3, 3)
    assert ok.error is None
    bad = await (await sample_app.flaky.enqueue(5)).wait(10)
    assert (bad.state, bad.attempts) == (State.FAILED, 3)
    assert bad.error is not None
    assert (bad.error.type, bad.error.message) == ("ValueError", "failure number 3")
    assert bad.error.traceback is not None
    assert "raise ValueError" in bad.error.traceback
    assert "failure number 3" in caplog.text
    with pytest.raises(TaskFailedError, match="ValueError: failure number 3"):
        await (await tasks.get_task("flaky").enqueue(5)).result(10)


async def test_backoff_grows_and_is_capped() -> None:
    task = sample_app.flaky
    for attempt in range(1, 12):
        ceiling = min(task.retry_backoff_max, task.retry_backoff * 2 ** (attempt - 1))
        assert ceiling / 2 <= task.backoff(attempt) <= ceiling


async def test_async_timeout_cancels(app: Quart) -> None:
    record = await (await sample_app.slow.enqueue()).wait(10)
    assert record.state == State.FAILED
    assert record.error is not None
    assert record.error.type == "TaskTimeoutError"


async def test_thread_timeout_fails_and_signals_the_thread(app: Quart) -> None:
    record = await (await sample_app.thread_slow.enqueue()).wait(10)
    assert record.state == State.FAILED
    assert record.error is not None
    assert "could not be killed" in record.error.message


async def test_unserialisable_result_is_an_explained_failure(app: Quart) -> None:
    record = await (await sample_app.unserialisable.enqueue()).wait(10)
    assert record.state == State.FAILED
    assert record.error is not None
    assert record.error.type == "UnstorableResultError"  # a PayloadError
    assert "JSON" in record.error.message


async def test_progress_is_throttled_but_last_value_kept(app: Quart) -> None:
    record = await (await sample_app.chatty.enqueue(5000)).wait(10)
    assert record.state == State.SUCCEEDED
    assert (record.progress.current, record.progress.total) == (5000, 5000)
    # claim + finish + a few throttled writes, not one write per report
    assert record.version < 20


async def test_bad_arguments_are_refused(app: Quart) -> None:
    with pytest.raises(InvalidArgumentsError, match="arguments do not fit task add"):
        await tasks.enqueue("add", 1)
    with pytest.raises(PayloadError, match="JSON"):
        await tasks.enqueue("add", math.nan, 1)
    with pytest.raises(PayloadError):
        await tasks.enqueue("add", object(), 1)
    with pytest.raises(UnknownTaskError, match="nope"):
        await tasks.enqueue("nope")
    with pytest.raises(InvalidArgumentsError, match="delay"):
        await sample_app.add.options(delay=-1).enqueue(1, 2)
    page = await tasks.list()
    assert page.tasks == []


async def test_priority_then_age_order(backend_url: str) -> None:
    app = sample_app.create_app(backend_url, concurrency=1)
    async with app.test_app():
        blocker = await sample_app.wait_gate.enqueue()
        await eventually(lambda: _async(("wait_gate", blocker.id) in sample_app.calls))
        low = await sample_app.add.enqueue(1, 1)
        high = await sample_app.add.options(priority=5).enqueue(2, 2)
        low2 = await sample_app.add.enqueue(3, 3)
        sample_app.gate.set()
        for handle in (low, high, low2):
            await handle.wait(10)
    assert [args for name, args in sample_app.calls if name == "add"] == [(2, 2), (1, 1), (3, 3)]


async def test_delay_is_honoured(app: Quart) -> None:
    handle = await sample_app.add.options(delay=0.3).enqueue(1, 1)
    record = await handle.wait(10)
    assert record.started_at is not None
    assert record.started_at >= record.created_at + 0.3


async def test_idempotency_key_returns_first_task(app: Quart) -> None:
    first = await sample_app.add.options(idempotency_key="k", delay=60).enqueue(1, 1)
    second = await sample_app.add.options(idempotency_key="k", delay=60).enqueue(9, 9)
    assert (first.created, second.created) == (True, False)
    assert second.id == first.id
    assert (await second.status()).args == [1, 1]


async def test_cancel_queued_task_never_runs(app: Quart) -> None:
    handle = await sample_app.add.options(delay=0.2).enqueue(7, 7)
    assert (await handle.cancel()).state == State.CANCELLED
    other = await sample_app.add.options(delay=0.3).enqueue(8, 8)
    await other.wait(10)
    assert ("add", (7, 7)) not in sample_app.calls
    with pytest.raises(InvalidStateError, match="already cancelled"):
        await handle.cancel()


async def test_cancel_running_async_task_stops_it(app: Quart) -> None:
    handle = await sample_app.sleep.enqueue(30)
    await eventually(lambda: _async(("sleep-start", handle.id) in sample_app.calls))
    await handle.cancel()
    record = await handle.wait(5)
    assert record.state == State.CANCELLED
    assert ("sleep-end", handle.id) not in sample_app.calls


async def test_retry_requeues_failed_task(app: Quart) -> None:
    handle = await sample_app.switch.enqueue()
    failed = await handle.wait(10)
    assert (failed.state, failed.attempts) == (State.FAILED, 1)
    sample_app.switch_on.set()
    assert (await tasks.retry(handle.id)).state == State.QUEUED
    record = await handle.wait(10)
    assert (record.state, record.result, record.attempts, record.error) == (
        State.SUCCEEDED,
        "on",
        1,
        None,
    )
    with pytest.raises(InvalidStateError):
        await tasks.retry((await sample_app.add.enqueue(1, 1)).id)


async def test_shutdown_requeues_unfinished_without_using_attempts(backend_url: str) -> None:
    app = sample_app.create_app(backend_url, concurrency=2, shutdown_timeout=0.2)
    async with app.test_app():
        running = [await sample_app.sleep.enqueue(30) for _ in range(2)]
        waiting = [await sample_app.sleep.enqueue(30) for _ in range(3)]
        ids = {h.id for h in running}
        await eventually(
            lambda: _async({i for n, i in sample_app.calls if n == "sleep-start"} == ids)
        )
    assert not tasks.accepting
    with pytest.raises(NotAcceptingError):
        await sample_app.add.enqueue(1, 1)
    store = create_store(backend_url)
    await store.open()
    try:
        records = await store.get_many([h.id for h in running + waiting])
    finally:
        await store.close()
    assert {r.state for r in records} == {State.QUEUED}
    assert {r.attempts for r in records} == {0}
    assert {r.lease_owner for r in records} == {None}


async def test_restart_runs_what_was_left(backend_url: str) -> None:
    app = sample_app.create_app(backend_url, concurrency=1, shutdown_timeout=0.1)
    async with app.test_app():
        blocker = await sample_app.sleep.enqueue(30)
        left = [await sample_app.add.enqueue(n, n) for n in range(5)]
        await eventually(lambda: _async(("sleep-start", blocker.id) in sample_app.calls))
    app = sample_app.create_app(backend_url, concurrency=4)
    async with app.test_app():
        results = [await h.result(10) for h in left]
        await tasks.cancel(blocker.id)
    assert results == [0, 2, 4, 6, 8]


async def test_unknown_task_in_store_fails_with_explanation(app: Quart) -> None:
    from tasks.model import NewTask, new_id

    now = time.time()
    task_id = new_id()
    await tasks.store.insert([NewTask(task_id, "gone.task", "default", "[]", "{}", 0, 1, now, now)])
    tasks.runtime.wake()
    record = await tasks.wait(task_id, 10)
    assert record.state == State.FAILED
    assert record.error is not None
    assert record.error.type == "UnknownTaskError"


async def test_unknown_task_is_retried_later_for_newer_workers(app: Quart) -> None:
    from tasks.model import NewTask, new_id
    from tasks.retrying import UNKNOWN_TASK_RETRY

    now = time.time()
    task_id = new_id()
    newer = NewTask(task_id, "newer.task", "default", "[]", "{}", 0, 2, now, now)
    await tasks.store.insert([newer])
    tasks.runtime.wake()

    async def retried() -> Any:
        record = await tasks.get(task_id)
        return record if record.attempts == 1 and record.state == State.QUEUED else None

    record = await eventually(retried)
    assert record.error is not None
    assert record.error.type == "UnknownTaskError"
    assert record.run_at >= now + UNKNOWN_TASK_RETRY


async def test_enqueue_many_is_one_transaction(app: Quart) -> None:
    handles = await tasks.enqueue_many([sample_app.add.call(n, 1) for n in range(50)])
    assert [await h.result(10) for h in handles] == [n + 1 for n in range(50)]
    with pytest.raises(PayloadError):
        await tasks.enqueue_many(
            [sample_app.add.options(delay=60).call(1, 1), tasks.get_task("add").call(set(), 1)]
        )
    page = await tasks.list(state=State.QUEUED)
    assert page.tasks == []
