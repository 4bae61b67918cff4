"""TaskQueue through sync (Flask-style) and async views, on Quart's test client."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart

from tasks import State
from tasks.compat import BlockingCallError
from tests.compat import queue_app
from tests.compat.queue_app import tasks, tq
from tests.conftest import eventually

STYLES = ["sync", "async"]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Quart]:
    queue_app.gate.clear()
    app = queue_app.create_app(database_url, TASKS_SHUTDOWN_TIMEOUT=2)
    async with app.test_app():
        try:
            yield app
        finally:
            queue_app.gate.set()


async def _put(app: Quart, style: str, data: str, timeout: float = 2) -> tuple[int, Any]:
    response = await app.test_client().post(f"/{style}/put?data={data}&timeout={timeout}")
    return response.status_code, await response.get_json()


@pytest.mark.parametrize("style", STYLES)
async def test_bound_raises_queue_full_then_waits_for_room(app: Quart, style: str) -> None:
    client = app.test_client()
    first = await _put(app, style, "a")
    second = await _put(app, style, "b")
    assert (first[0], second[0]) == (202, 202)
    size = await (await client.get(f"/{style}/size")).get_json()
    assert size == {"size": 2, "full": True, "empty": False}

    refused = await client.post(f"/{style}/put_nowait?data=c")
    assert refused.status_code == 400
    assert (await refused.get_json())["msg"] == "queue is full, try later"
    assert await _put(app, style, "c", timeout=0.1) == (400, {"msg": "queue is full, try later"})

    waiting = asyncio.create_task(_put(app, style, "c", timeout=30))
    queue_app.gate.set()
    status, body = await waiting
    assert status == 202

    joined = await client.post(f"/{style}/join?timeout=30")
    assert await joined.get_json() == {"size": 0}
    record = await tasks.get(body["id"])
    assert record.name == tq.task.name
    assert record.state == State.SUCCEEDED
    assert record.result == {"item": "c", "app": "queue_app"}
    for _, first_body in (first, second):
        assert (await tasks.get(first_body["id"])).result["item"] in {"a", "b"}


async def test_items_are_durable_tasks_visible_in_the_store(app: Quart) -> None:
    handle = await tq.aput("stored")
    record = await tasks.get(handle.id)
    assert (record.name, record.args) == (tq.task.name, ["stored"])
    assert record.state in (State.QUEUED, State.RUNNING)


async def test_blocking_calls_on_the_loop_name_the_async_variant(app: Quart) -> None:
    with pytest.raises(BlockingCallError, match=r"await queue\.aput"):
        tq.put("x")
    with pytest.raises(BlockingCallError, match=r"await queue\.aqsize"):
        tq.qsize()
    with pytest.raises(BlockingCallError, match=r"await queue\.ajoin"):
        tq.join()


async def test_put_refuses_negative_timeout_and_unserialisable_items(app: Quart) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        await tq.aput("x", timeout=-1)
    with pytest.raises(Exception, match="JSON"):
        await tq.aput(object())
    assert await tq.aqsize() == 0


async def test_worker_number_sets_concurrency(database_url: str) -> None:
    app = queue_app.create_app(database_url, WORKER_NUMBER=3, MAX_QUEUE_SIZE=5)
    async with app.test_app():
        assert tasks.config.concurrency == 3
        assert tq.maxsize == 5


async def test_global_backlog_bound_also_raises_queue_full(database_url: str) -> None:
    app = queue_app.create_app(
        database_url, MAX_QUEUE_SIZE=0, TASKS_MAX_QUEUED=1, TASKS_WORKERS=False
    )
    async with app.test_app():
        await tq.aput("one")
        with pytest.raises(queue.Full):
            await tq.aput("two", block=False)


async def test_join_waits_for_every_item(app: Quart) -> None:
    handles = [await tq.aput(str(n)) for n in range(2)]
    joining = asyncio.create_task(tq.ajoin(timeout=30))
    await eventually(lambda: _running(handles), timeout=10)
    assert not joining.done()
    queue_app.gate.set()
    await joining
    assert [(await h.status()).state for h in handles] == [State.SUCCEEDED] * 2


async def _running(handles: list[Any]) -> bool:
    states = [(await h.status()).state for h in handles]
    return states == [State.RUNNING] * len(handles)
