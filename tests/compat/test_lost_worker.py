"""Celery-style tasks whose process died (kill -9): rerun, or failed with a callback.

A "dead process" is a second store connection that claims the tasks under
its own owner name with a lease that expires at once, and never renews it.
The app served afterwards is the live process that reclaims them.
"""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart

from tasks import State
from tasks.leases import WORKER_LOST
from tasks.registry import TaskCall
from tasks.store.sqlite import SQLiteStore
from tests.compat import celery_app
from tests.compat.celery_app import celery, tasks
from tests.conftest import eventually


@pytest.fixture(autouse=True)
def _reset() -> None:
    celery_app.gate.set()  # long_task returns at once
    celery_app.callbacks.clear()


async def _enqueue_then_lose(database_url: str, calls: list[TaskCall[Any]]) -> list[str]:
    """Enqueue outside a served app, then let a process claim the tasks and "die"."""
    celery_app.create_app(database_url)
    async with tasks.running():
        ids = [handle.id for handle in await tasks.enqueue_many(calls)]
    dead = SQLiteStore(database_url)
    await dead.open()
    try:
        claimed = await dead.claim("dead-host:1:00000000", ["default"], len(ids), 0.001)
    finally:
        await dead.close()
    assert sorted(record.id for record in claimed) == sorted(ids)
    return ids


@pytest.fixture
def live_app(database_url: str) -> Quart:
    """The process that outlives the dead one (it reclaims on startup and every beat)."""
    return celery_app.create_app(database_url, TASKS_LEASE_SECONDS=1, TASKS_HEARTBEAT_SECONDS=0.05)


async def test_a_celery_task_of_a_lost_worker_runs_again(
    database_url: str, live_app: Quart
) -> None:
    [task_id] = await _enqueue_then_lose(database_url, [celery_app.long_task.task.call(2)])
    async with live_app.test_app():
        value = await celery.AsyncResult(task_id).aget(timeout=30)
        record = await tasks.get(task_id)
        await eventually(lambda: _callbacks(1))
    assert value["id"] == task_id
    assert (record.state, record.attempts) == (State.SUCCEEDED, 2)
    assert celery_app.callbacks == [("success", task_id, value)]


async def test_on_failure_fires_once_in_the_process_that_fails_a_lost_task(
    database_url: str, live_app: Quart
) -> None:
    last_attempt = celery_app.explode.task.options(max_attempts=1)
    ids = await _enqueue_then_lose(database_url, [last_attempt.call("boom") for _ in range(4)])
    async with live_app.test_app():
        for task_id in ids:
            record = await tasks.wait(task_id, timeout=30)
            assert (record.state, record.attempts) == (State.FAILED, 1)
        await eventually(lambda: _callbacks(4))
        # A later outcome's callback arriving shows no second one is on its way.
        extra = await celery_app.explode.adelay("late")
        await eventually(lambda: _callbacks(5))
    assert sorted(c for c in celery_app.callbacks if c[1] != extra.id) == sorted(
        ("failure", task_id, f"WorkerLostError:{WORKER_LOST}:celery_app") for task_id in ids
    )


async def _callbacks(count: int) -> bool:
    return len(celery_app.callbacks) >= count
