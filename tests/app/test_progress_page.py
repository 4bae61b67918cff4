"""Scenario 4: a page starting long tasks and following their progress over SSE."""

from __future__ import annotations

import asyncio
import json

from quart.typing import TestClientProtocol as QuartClient

from app.extensions import tasks
from tasks import State


async def test_page_follows_tasks_over_the_events_stream(client: QuartClient) -> None:
    page = await client.get("/progress")
    assert page.status_code == 200
    html = await page.get_data(as_text=True)
    assert "new EventSource(`/tasks/${id}/events`)" in html
    assert 'events.addEventListener("task"' in html
    assert 'fetch("/progress"' in html


async def test_started_task_reports_every_step(client: QuartClient) -> None:
    response = await client.post("/progress", json={"steps": 3, "delay": 0.01})
    assert response.status_code == 202
    task_id = (await response.get_json())["id"]
    assert response.headers["Location"] == f"/tasks/{task_id}"

    record = await tasks.wait(task_id, 10)
    assert (record.name, record.state, record.result) == (
        "demo.progress",
        State.SUCCEEDED,
        "3 steps done",
    )
    assert (record.progress.current, record.progress.total) == (3, 3)
    assert record.progress.message == "step 3 of 3"


async def test_start_refuses_bad_input(client: QuartClient) -> None:
    for body in ({"steps": 0}, {"steps": 2.5}, {"delay": -1}, {"steps": "3"}):
        response = await client.post("/progress", json=body)
        assert response.status_code == 400, body
    assert (await tasks.list(name="demo.progress")).tasks == []


async def test_events_stream_moves_the_bar_to_the_result(client: QuartClient) -> None:
    response = await client.post("/progress", json={"steps": 4, "delay": 0.1})
    task_id = (await response.get_json())["id"]
    async with asyncio.timeout(30):
        stream = await client.get(f"/tasks/{task_id}/events")
        body = await stream.get_data(as_text=True)  # the stream ends at the terminal state
    assert stream.status_code == 200
    records = [
        json.loads(line.removeprefix("data: "))
        for line in body.splitlines()
        if line.startswith("data: ")
    ]
    assert "event: task" in body
    steps = [r["progress"]["current"] for r in records]
    assert steps == sorted(steps)
    assert steps[-1] == 4
    assert len(set(steps)) >= 2  # the bar moved while the page watched
    assert records[-1]["state"] == "succeeded"
    assert records[-1]["result"]["preview"] == '"4 steps done"'  # events carry summaries
