"""Flow control over HTTP: unique keys answer 200 with the active task; why a task waits."""

from __future__ import annotations

from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks
from tests.web.conftest import stored_count


async def test_unique_key_returns_the_active_task_then_is_released(client: Client) -> None:
    body = {"name": "demo.sleep", "args": [0.2], "unique_key": "nightly"}
    first = await client.post("/tasks", json=body)
    assert first.status_code == 202
    task = await first.get_json()
    assert task["limits"]["unique_key"] == "demo.sleep:nightly"
    count = await stored_count()
    second = await client.post("/tasks", json={**body, "args": [0]})
    assert second.status_code == 200
    assert (await second.get_json())["id"] == task["id"]
    assert await stored_count() == count
    assert (await tasks.wait(task["id"], 10)).state.value == "succeeded"
    third = await client.post("/tasks", json=body)
    assert third.status_code == 202
    assert (await third.get_json())["id"] != task["id"]


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_a_queued_task_says_why_it_waits(client: Client) -> None:
    delayed = await client.post("/tasks", json={"name": "demo.echo", "args": [1], "delay": 60})
    due = await client.post("/tasks", json={"name": "demo.echo", "args": [2]})
    later: Any = await (await client.get(f"/tasks/{(await delayed.get_json())['id']}")).get_json()
    assert later["waiting"]["reason"] == "delayed"
    assert later["waiting"]["until"] == later["run_at"]
    now: Any = await (await client.get(f"/tasks/{(await due.get_json())['id']}")).get_json()
    assert now["waiting"] == {
        "reason": "ready",
        "detail": "due: it starts when a worker serving its queue is free",
        "until": None,
    }
    assert now["limits"] is None


@pytest.mark.parametrize(
    ("field", "value"), [("unique_key", ""), ("unique_key", 5), ("unique_key", "x" * 151)]
)
async def test_bad_unique_key_is_refused(client: Client, field: str, value: object) -> None:
    before = await stored_count()
    response = await client.post("/tasks", json={"name": "demo.echo", "args": [1], field: value})
    assert response.status_code == 400
    assert field in str((await response.get_json())["error"])
    assert await stored_count() == before
