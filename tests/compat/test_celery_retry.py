"""Celery's ``self.retry()`` in bound tasks: spends an attempt, bounded by max_retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from quart import Quart

from tasks import State
from tasks.compat import CeleryTask
from tests.compat import celery_app
from tests.compat.celery_app import tasks

STYLES = ["sync", "async"]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Quart]:
    app = celery_app.create_app(database_url)
    async with app.test_app():
        yield app


def _task(style: str) -> CeleryTask[int]:
    return celery_app.fetch_sync if style == "sync" else celery_app.fetch_async


async def _delay(style: str, fail_times: int) -> str:
    task = _task(style)
    if style == "sync":  # a blocking call from a thread, as in a plain ``def`` view
        return (await asyncio.to_thread(task.delay, fail_times)).id
    return (await task.adelay(fail_times)).id


@pytest.mark.parametrize("style", STYLES)
async def test_self_retry_spends_an_attempt_and_keeps_the_error(app: Quart, style: str) -> None:
    record = await tasks.wait(await _delay(style, 1), timeout=30)
    assert (record.state, record.result) == (State.SUCCEEDED, 1)
    assert (record.attempts, record.max_attempts, record.snoozes) == (2, 3, 0)
    assert [(e.type, e.message, e.attempt) for e in record.errors] == [
        ("ConnectionError", "down on retry 0", 1)
    ]


@pytest.mark.parametrize("style", STYLES)
async def test_past_max_retries_exc_is_raised_and_fails_the_task(app: Quart, style: str) -> None:
    record = await tasks.wait(await _delay(style, 5), timeout=30)
    assert (record.state, record.attempts) == (State.FAILED, 3)
    assert record.error is not None
    assert (record.error.type, record.error.message) == ("ConnectionError", "down on retry 2")
    assert [e.message for e in record.errors] == [f"down on retry {n}" for n in range(3)]


async def test_without_exc_max_retries_exceeded_is_raised(app: Quart) -> None:
    result = await celery_app.retry_without_exc.adelay()
    record = await tasks.wait(result.id, timeout=30)
    assert (record.state, record.attempts) == (State.FAILED, 2)
    assert [e.type for e in record.errors] == ["CeleryRetry", "MaxRetriesExceededError"]


def test_self_retry_outside_a_run_is_refused() -> None:
    with pytest.raises(RuntimeError, match="inside a run"):
        celery_app.fetch_sync.retry()
