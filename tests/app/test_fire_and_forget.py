"""Scenario 2: a blocking function in the app's pool, a completion callback, bounded threads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from quart.typing import TestClientProtocol as QuartClient

from app.extensions import tasks
from tests.app.server import HypercornServer
from tests.conftest import eventually


async def test_callback_records_the_outcome(client: QuartClient) -> None:
    response = await client.post("/fire", json={"seconds": 0.05})
    assert response.status_code == 202
    task_id = (await response.get_json())["id"]
    record = await tasks.wait(task_id, 10)
    assert record.result == 0.05

    async def noted() -> list[dict[str, object]]:
        callbacks = (await (await client.get("/fire/callbacks")).get_json())["callbacks"]
        return [c for c in callbacks if c["task_id"] == task_id]

    [note] = await eventually(noted)
    assert note["outcome"] == "succeeded"

    counts = await (await client.get("/fire/threads")).get_json()
    assert 1 <= counts["pool_threads"] <= counts["pool_max_threads"] == 10
    assert counts["active_threads"] > counts["pool_threads"]


async def test_fire_refuses_bad_input(client: QuartClient) -> None:
    for body in ({"seconds": -1}, {"seconds": 61}, {"seconds": "1"}, {"seconds": True}):
        assert (await client.post("/fire", json=body)).status_code == 400, body
    assert (await tasks.list(name="fire.blocking_work")).tasks == []


@pytest.fixture
def served(tmp_path: Path) -> Iterator[HypercornServer]:
    server = HypercornServer(tmp_path, env={"TASKS_THREADS": "8", "TASKS_CONCURRENCY": "20"})
    try:
        yield server.start()
    finally:
        server.kill()


@pytest.mark.slow
async def test_threads_stay_bounded_under_200_concurrent_requests(
    served: HypercornServer,
) -> None:
    async with httpx.AsyncClient(
        base_url=served.url, timeout=60, limits=httpx.Limits(max_connections=200)
    ) as http:
        idle = (await http.get("/fire/threads")).json()
        answers = await asyncio.gather(
            *(http.post("/fire", json={"seconds": 0.3}) for _ in range(200))
        )
        assert [answer.status_code for answer in answers] == [202] * 200
        ids = {answer.json()["id"] for answer in answers}

        samples = []

        async def all_called_back() -> bool:
            samples.append((await http.get("/fire/threads")).json())
            callbacks = (await http.get("/fire/callbacks")).json()["callbacks"]
            return ids <= {c["task_id"] for c in callbacks if c["outcome"] == "succeeded"}

        await eventually(all_called_back, timeout=90, interval=0.2)

    # seed 002 started one more thread per request; here the pool's bound holds.
    assert idle["pool_max_threads"] == 8
    assert max(s["pool_threads"] for s in samples) == 8
    assert max(s["active_threads"] for s in samples) <= idle["active_threads"] + 8
