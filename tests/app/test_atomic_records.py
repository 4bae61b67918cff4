"""Scenario 1b: the request row and its task commit or roll back together, on each backend."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as QuartClient
from sqlalchemy import select, text

from app.extensions import tasks
from app.migrations import VERSION_TABLE
from app.models import RecordRequest
from app.scenarios import atomic_records
from app.taskdb import task_db
from tasks import State


@pytest.fixture
def app_config(app_config: dict[str, Any], backend_url: str) -> dict[str, Any]:
    """The reference app with its task store (and so the request table) on each backend."""
    return {**app_config, "TASKS_DATABASE_URL": backend_url}


async def fulfil_tasks() -> list[str]:
    return [record.id for record in (await tasks.list(name="records.fulfil")).tasks]


async def requests(client: QuartClient) -> list[dict[str, Any]]:
    response = await client.get("/records/atomic")
    assert response.status_code == 200
    rows: list[dict[str, Any]] = (await response.get_json())["requests"]
    return rows


async def test_committed_request_keeps_row_and_task_and_the_task_runs(
    app: Quart, client: QuartClient
) -> None:
    response = await client.post("/records/atomic", json={"data": "hello", "key": "order-1"})
    assert response.status_code == 202
    task_id = (await response.get_json())["id"]
    assert response.headers["Location"] == f"/tasks/{task_id}"

    record = await tasks.wait(task_id, 10)
    assert (record.state, record.result) == (State.SUCCEEDED, {"written": True})
    [row] = await requests(client)
    assert (row["task_id"], row["data"], row["request_key"]) == (task_id, "hello", "order-1")
    assert row["done_at"] is not None
    listing = await (await client.get("/records")).get_json()
    assert [(r["task_id"], r["data"]) for r in listing["records"]] == [(task_id, "hello")]

    # Reopening (as a restart does) keeps the row and does not migrate twice.
    async with app.app_context():
        database = task_db()
        await database.close()
        await database.open()
        async with database.session() as session:
            versions = (await session.scalars(text(f"SELECT * FROM {VERSION_TABLE}"))).all()
    assert versions == ["taskdb_0001"]
    assert [r["task_id"] for r in await requests(client)] == [task_id]


async def test_rolled_back_transaction_leaves_neither_row_nor_task(
    app: Quart, client: QuartClient
) -> None:
    class AbortError(Exception):
        pass

    written: list[str] = []

    async def request_then_fail() -> None:
        async with task_db().session() as session:
            handle = await atomic_records.request_record(session, "lost")
            inside = (await session.scalars(select(RecordRequest.task_id))).all()
            assert inside == [handle.id]  # written, not yet committed
            written.append(handle.id)
            raise AbortError

    async with app.app_context():
        with pytest.raises(AbortError):
            await request_then_fail()
    assert len(written) == 1
    assert await tasks.store.get(written[0]) is None
    assert await fulfil_tasks() == []
    assert await requests(client) == []


async def test_duplicate_key_rolls_back_the_second_task(client: QuartClient) -> None:
    first = await client.post("/records/atomic", json={"data": "a", "key": "same"})
    assert first.status_code == 202
    second = await client.post("/records/atomic", json={"data": "b", "key": "same"})
    assert second.status_code == 409
    assert (await second.get_json())["error"]["code"] == "duplicate_key"
    # The second task was inserted before its row failed; the rollback took it too.
    assert await fulfil_tasks() == [(await first.get_json())["id"]]
    assert [r["data"] for r in await requests(client)] == ["a"]


async def test_bad_input_is_refused_and_writes_nothing(client: QuartClient) -> None:
    bodies: list[Any] = [{}, {"data": ""}, {"data": 5}, {"data": "x" * 10_001}]
    bodies += [{"data": "x", "key": 5}, {"data": "x", "key": ""}, [1, 2]]
    for body in bodies:
        response = await client.post("/records/atomic", json=body)
        assert response.status_code == 400, body
        assert (await response.get_json())["error"]["code"] in {"invalid_field", "invalid_json"}
    response = await client.post(
        "/records/atomic", data=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert (await client.get("/records/atomic?limit=0")).status_code == 400
    assert await requests(client) == []
    assert await fulfil_tasks() == []


async def test_the_task_is_kept_off_the_http_api(client: QuartClient) -> None:
    response = await client.post("/tasks", json={"name": "records.fulfil"})
    assert response.status_code == 422
    assert await fulfil_tasks() == []


async def rename(app: Quart, old: str, new: str) -> None:
    async with app.app_context(), task_db().session() as session:
        await session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def test_failed_write_answers_503_and_leaves_no_task(app: Quart, client: QuartClient) -> None:
    await rename(app, "record_requests", "record_requests_away")  # the row's INSERT fails
    refused = await client.post("/records/atomic", json={"data": "lost"})
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert (await refused.get_json())["error"]["code"] == "store_unavailable"
    assert await fulfil_tasks() == []  # the task inserted before the failure went with it
    await rename(app, "record_requests_away", "record_requests")
    assert (await client.post("/records/atomic", json={"data": "kept"})).status_code == 202
    assert [r["data"] for r in await requests(client)] == ["kept"]
