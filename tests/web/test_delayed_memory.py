"""Delayed tasks cost the process O(1) memory until they are due.

Each delayed enqueue used to arm a timer of its own, which also kept the whole
Quart request (its context) alive until the task was due: a delay may be years.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import pytest
from quart import Quart, Request
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks
from tasks import State
from tests.conftest import eventually

DELAYED = 1000
ASYNCIO_SWEEP = 150


def live_requests() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, Request))


def scheduled_timers() -> int:
    loop: Any = asyncio.get_running_loop()
    return sum(1 for handle in loop._scheduled if not handle.cancelled())


async def test_delayed_enqueues_keep_no_request_and_one_timer(client: Client) -> None:
    timers = scheduled_timers()
    for n in range(DELAYED):
        body = {"name": "demo.echo", "args": [n], "delay": 3600 + n}
        assert (await client.post("/tasks", json=body)).status_code == 202
    # asyncio keeps up to ~100 cancelled timers (Quart's request timeouts) and
    # the requests in their contexts until it sweeps them; none is held for the delay.
    assert live_requests() <= ASYNCIO_SWEEP
    assert scheduled_timers() <= timers + 10  # other timers come and go; not one per task


@pytest.mark.parametrize("app_config", [{"TASKS_POLL_INTERVAL": 60}])
async def test_each_delayed_task_starts_when_due_without_polling(app: Quart) -> None:
    """With polling at once a minute, only the re-armed timer can start these in time."""
    echo = tasks.get_task("demo.echo")
    handles = [await echo.options(delay=0.3 * (n + 1)).enqueue(n) for n in range(4)]
    for handle in handles:
        record = await handle.wait(20)
        assert record.result is not None
    records = [await tasks.get(h.id) for h in handles]
    for record in records:
        assert record.started_at is not None
        assert record.started_at >= record.run_at
    assert time.time() - records[0].created_at < 20

    async def idle() -> bool:
        return (await tasks.store.count_by_state())[State.QUEUED] == 0

    await eventually(idle)
