"""Scenario 1: records written by a task, exactly once; a full backlog refused with 429."""

from __future__ import annotations

from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as QuartClient

from app import create_app
from app.extensions import tasks
from app.scenarios import records
from tasks import State
from tasks.context import TaskContext, set_current


async def test_record_is_written_once_even_when_the_task_runs_again(
    app: Quart, client: QuartClient
) -> None:
    response = await client.post("/records", json={"data": "hello"})
    assert response.status_code == 202
    body = await response.get_json()
    assert response.headers["Location"] == f"/tasks/{body['id']}" == body["url"]

    record = await tasks.wait(body["id"], 10)
    assert (record.state, record.result) == (State.SUCCEEDED, {"written": True})

    # A retry after a crash runs the body again under the same task id.
    set_current(TaskContext(body["id"], "records.store", 2, 3, lambda progress: None))
    try:
        async with app.app_context():
            assert await records.store_record.fn("hello") == {"written": False}
    finally:
        set_current(None)

    listing = await (await client.get("/records")).get_json()
    assert [(r["task_id"], r["data"]) for r in listing["records"]] == [(body["id"], "hello")]


async def test_full_backlog_answers_429_with_retry_after(app_config: dict[str, Any]) -> None:
    app = create_app({**app_config, "TASKS_MAX_QUEUED": 2, "TASKS_WORKERS": False})
    async with app.test_app():
        client = app.test_client()
        for data in ("a", "b"):
            assert (await client.post("/records", json={"data": data})).status_code == 202
        refused = await client.post("/records", json={"data": "c"})
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "5"
        error = (await refused.get_json())["error"]
        assert error == {"code": "queue_full", "message": "queue is full, try later"}
        page = await tasks.list(name="records.store")
        assert sorted(record.args[0] for record in page.tasks) == ["a", "b"]


async def test_bad_input_is_refused_and_enqueues_nothing(client: QuartClient) -> None:
    for body in ({}, {"data": ""}, {"data": 5}, {"data": "x" * 10_001}):
        response = await client.post("/records", json=body)
        assert response.status_code == 400, body
        assert (await response.get_json())["error"]["code"] == "invalid_field"
    response = await client.post(
        "/records", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, (await response.get_json())["error"]["code"]) == (
        400,
        "invalid_json",
    )
    assert (await client.get("/records?limit=0")).status_code == 400
    assert (await tasks.list(name="records.store")).tasks == []
