"""Executor through sync (Flask-style) and async views, on Quart's test client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from quart import Quart

from tasks import ConfigurationError
from tasks.compat import AwaitableFuture, BlockingCallError
from tests.compat import executor_app
from tests.compat.executor_app import executor, tasks
from tests.conftest import eventually

STYLES = ["sync", "async"]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Quart]:
    app = executor_app.create_app(database_url)
    async with app.test_app():
        yield app


@pytest.mark.parametrize("style", STYLES)
async def test_submit_runs_on_app_pool_with_context_and_contextvars(app: Quart, style: str) -> None:
    before = len(executor_app.finished)
    response = await app.test_client().get(f"/{style}/run?x=21")
    body = await response.get_json()
    assert response.status_code == 200
    assert body["double"] == 42
    assert body["app"] == "executor_app"
    assert body["tag"] == f"{style}-21"
    assert body["thread"].startswith("tasks-thread")
    await eventually(lambda: _finished_since(before, 1))
    assert len(executor_app.finished) == before + 1


@pytest.mark.parametrize("style", STYLES)
async def test_map_keeps_order(app: Quart, style: str) -> None:
    response = await app.test_client().get(f"/{style}/map")
    assert await response.get_json() == [2, 4, 6]


@pytest.mark.parametrize("style", STYLES)
async def test_stored_future_is_looked_up_then_popped(app: Quart, style: str) -> None:
    client = app.test_client()
    assert (await client.post(f"/{style}/stored/job?x=5")).status_code == 202

    async def done() -> dict[str, object] | None:
        body: dict[str, object] = await (await client.get(f"/{style}/stored/job")).get_json()
        return body if body["status"] == "done" else None

    body = await eventually(done)
    assert body["result"]["double"] == 10
    assert await (await client.get(f"/{style}/stored/job")).get_json() == {"status": None}


async def test_stored_key_must_be_unique(app: Quart) -> None:
    executor.submit_stored("same", executor_app.work, 1)
    with pytest.raises(ValueError, match="already stored"):
        executor.submit_stored("same", executor_app.work, 2)
    future = executor.futures.pop("same")
    assert future is not None
    assert (await future)["double"] == 2


async def test_future_is_a_concurrent_future_that_refuses_to_block_the_loop(app: Quart) -> None:
    future = executor.submit(executor_app.work, 1)
    assert isinstance(future, AwaitableFuture)
    if not future.done():
        with pytest.raises(BlockingCallError, match="await future"):
            future.result()
    assert (await future)["double"] == 2
    assert future.result()["double"] == 2


async def test_exceptions_reach_the_awaiting_caller(app: Quart) -> None:
    def boom() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        await executor.submit(boom)


@pytest.mark.parametrize("style", STYLES)
async def test_a_failed_job_is_logged_once_with_its_traceback(
    app: Quart, style: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The callback pattern of the porting guide: results and errors reach it, errors the log."""
    caplog.set_level(logging.INFO)
    executor_app.outcomes.clear()
    client = app.test_client()
    assert (await client.post(f"/{style}/callback?x=4")).status_code == 202
    assert (await client.post(f"/{style}/callback?x=-1")).status_code == 202
    await eventually(lambda: _true(len(executor_app.outcomes) == 2))
    assert sorted(executor_app.outcomes) == [
        "done: 40",
        "failed: ValueError('cannot work on -1')",
    ]
    [logged] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged.name == "tasks"
    assert logged.getMessage() == "executor job fake_work failed: ValueError: cannot work on -1"
    assert logged.exc_info is not None
    assert "raise ValueError" in caplog.text  # the traceback


async def test_coroutine_functions_are_refused(app: Quart) -> None:
    async def coro() -> None:
        return None

    with pytest.raises(TypeError, match="durable task"):
        executor.submit(coro)


async def test_process_executor_type_is_refused(database_url: str) -> None:
    with pytest.raises(ConfigurationError, match="process"):
        executor_app.create_app(database_url, EXECUTOR_TYPE="process")


async def test_max_workers_sizes_the_app_pool(database_url: str) -> None:
    app = executor_app.create_app(database_url, EXECUTOR_MAX_WORKERS=3)
    async with app.test_app():
        assert tasks.config.thread_count == 3
        results = await asyncio.gather(*(executor.submit(executor_app.work, n) for n in range(6)))
        assert [r["double"] for r in results] == [0, 2, 4, 6, 8, 10]
        assert tasks.runtime.executors.threads.thread_count <= 3


async def _true(value: bool) -> bool:
    return value


async def _finished_since(before: int, count: int) -> bool:
    return len(executor_app.finished) >= before + count
