"""POST /tasks: enqueueing, idempotency, and every kind of bad input."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks
from tests.conftest import eventually
from tests.web.conftest import stored_count

JSON = {"Content-Type": "application/json"}


async def post_raw(
    client: Client, body: bytes, content_type: str | None = "application/json"
) -> Any:
    headers = {"Content-Type": content_type} if content_type else {}
    return await client.post("/tasks", data=body, headers=headers)


async def test_enqueue_returns_202_with_location_and_the_task(client: Client) -> None:
    response = await client.post("/tasks", json={"name": "demo.echo", "args": [{"a": [1, 2]}]})
    assert response.status_code == 202
    task = await response.get_json()
    assert response.headers["Location"] == f"/tasks/{task['id']}"
    assert task["name"] == "demo.echo"
    assert task["state"] in ("queued", "running", "succeeded")
    assert task["args"] == [{"a": [1, 2]}]
    for key in ("kwargs", "attempts", "max_attempts", "progress", "result", "error"):
        assert key in task
    for key in ("created_at", "started_at", "finished_at"):
        assert key in task

    async def finished() -> Any:
        body = await (await client.get(response.headers["Location"])).get_json()
        return body if body["state"] == "succeeded" else None

    done = await eventually(finished)
    assert done["result"] == {"a": [1, 2]}
    assert done["progress"] == {"current": 0, "total": None, "message": None}
    assert done["error"] is None
    assert done["finished_at"] is not None


async def test_options_are_stored(client: Client) -> None:
    response = await client.post(
        "/tasks",
        json={
            "name": "demo.sleep",
            "kwargs": {"seconds": 0},
            "delay": 3600,
            "priority": 7,
            "max_attempts": 5,
        },
    )
    assert response.status_code == 202
    task = await response.get_json()
    assert (task["state"], task["priority"], task["max_attempts"]) == ("queued", 7, 5)
    run_at = datetime.fromisoformat(task["run_at"].replace("Z", "+00:00")).timestamp()
    assert run_at > time.time() + 3500


async def test_same_idempotency_key_returns_the_first_task(client: Client) -> None:
    body = {"name": "demo.echo", "args": [1], "idempotency_key": "order-42"}
    first = await client.post("/tasks", json=body)
    assert first.status_code == 202
    count = await stored_count()
    second = await client.post("/tasks", json={**body, "args": [2]})
    assert second.status_code == 200
    assert (await second.get_json())["id"] == (await first.get_json())["id"]
    assert second.headers["Location"] == first.headers["Location"]
    assert await stored_count() == count


DEEP = b'{"name": "demo.echo", "args": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
NESTED_100 = json.dumps({"name": "demo.echo", "args": [json.loads("[" * 100 + "]" * 100)]})

BAD_BODIES: list[tuple[str, bytes, str | None, int, str]] = [
    ("malformed", b'{"name": "demo.echo", ', "application/json", 400, "invalid_json"),
    ("empty", b"", "application/json", 400, "invalid_json"),
    (
        "text/plain",
        b'{"name": "demo.echo", "args": [1]}',
        "text/plain",
        415,
        "unsupported_media_type",
    ),
    ("no content type", b'{"name": "demo.echo", "args": [1]}', None, 415, "unsupported_media_type"),
    ("form", b"name=demo.echo", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    (
        "latin-1",
        b'{"name": "demo.echo", "args": [1]}',
        "application/json; charset=latin-1",
        415,
        "unsupported_media_type",
    ),
    (
        "not utf-8",
        b'{"name": "demo.echo", "args": ["\xff\xfe"]}',
        "application/json",
        400,
        "invalid_encoding",
    ),
    ("nested 5000 deep", DEEP, "application/json", 400, "json_too_deep"),
    ("nested 100 deep", NESTED_100.encode(), "application/json", 400, "json_too_deep"),
    ("NaN", b'{"name": "demo.echo", "args": [NaN]}', "application/json", 400, "invalid_json"),
    (
        "Infinity",
        b'{"name": "demo.echo", "args": [Infinity]}',
        "application/json",
        400,
        "invalid_json",
    ),
    (
        "-Infinity",
        b'{"name": "demo.echo", "args": [-Infinity]}',
        "application/json",
        400,
        "invalid_json",
    ),
    (
        "overflowing float",
        b'{"name": "demo.echo", "args": [1e400]}',
        "application/json",
        400,
        "invalid_json",
    ),
    ("array body", b'["demo.echo"]', "application/json", 400, "invalid_body"),
    ("missing name", b'{"args": [1]}', "application/json", 400, "invalid_body"),
    ("name not a string", b'{"name": 5, "args": [1]}', "application/json", 400, "invalid_body"),
    (
        "unknown task",
        b'{"name": "nope.missing", "args": [1]}',
        "application/json",
        422,
        "unknown_task",
    ),
    (
        "args not a list",
        b'{"name": "demo.echo", "args": {"value": 1}}',
        "application/json",
        400,
        "invalid_body",
    ),
    (
        "kwargs not an object",
        b'{"name": "demo.echo", "kwargs": [1]}',
        "application/json",
        400,
        "invalid_body",
    ),
    ("missing argument", b'{"name": "demo.echo"}', "application/json", 422, "invalid_arguments"),
    (
        "extra argument",
        b'{"name": "demo.echo", "args": [1, 2]}',
        "application/json",
        422,
        "invalid_arguments",
    ),
    (
        "unknown keyword",
        b'{"name": "demo.sleep", "kwargs": {"secs": 1}}',
        "application/json",
        422,
        "invalid_arguments",
    ),
    (
        "negative delay",
        b'{"name": "demo.echo", "args": [1], "delay": -1}',
        "application/json",
        400,
        "invalid_body",
    ),
    (
        "delay as text",
        b'{"name": "demo.echo", "args": [1], "delay": "5"}',
        "application/json",
        400,
        "invalid_body",
    ),
    (
        "priority as text",
        b'{"name": "demo.echo", "args": [1], "priority": "5"}',
        "application/json",
        400,
        "invalid_body",
    ),
    (
        "priority float",
        b'{"name": "demo.echo", "args": [1], "priority": 1.5}',
        "application/json",
        400,
        "invalid_body",
    ),
    (
        "priority bool",
        b'{"name": "demo.echo", "args": [1], "priority": true}',
        "application/json",
        400,
        "invalid_body",
    ),
    (
        "max_attempts zero",
        b'{"name": "demo.echo", "args": [1], "max_attempts": 0}',
        "application/json",
        400,
        "invalid_body",
    ),
    (
        "empty idempotency key",
        b'{"name": "demo.echo", "args": [1], "idempotency_key": ""}',
        "application/json",
        400,
        "invalid_body",
    ),
    (
        "unknown field",
        b'{"name": "demo.echo", "args": [1], "colour": "x"}',
        "application/json",
        400,
        "invalid_body",
    ),
]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
async def test_bad_input_is_refused_and_enqueues_nothing(
    client: Client,
    unchanged: Any,
    body: bytes,
    content_type: str | None,
    status: int,
    code: str,
) -> None:
    async with unchanged():
        response = await post_raw(client, body, content_type)
        assert response.status_code == status
        error = (await response.get_json())["error"]
        assert error["code"] == code
        assert error["message"]


async def test_error_message_names_the_field(client: Client) -> None:
    response = await client.post("/tasks", json={"name": "demo.echo", "args": [1], "delay": -2})
    assert "delay" in (await response.get_json())["error"]["message"]


async def test_unknown_task_message_names_it(client: Client) -> None:
    response = await client.post("/tasks", json={"name": "nope.missing"})
    assert "nope.missing" in (await response.get_json())["error"]["message"]


@pytest.mark.parametrize("app_config", [{"TASKS_MAX_BODY_BYTES": 256}])
async def test_body_over_the_limit_gets_413(client: Client, unchanged: Any) -> None:
    body = json.dumps({"name": "demo.echo", "args": ["x" * 300]}).encode()
    async with unchanged():
        response = await post_raw(client, body)
        assert response.status_code == 413
        assert (await response.get_json())["error"]["code"] == "body_too_large"


@pytest.mark.parametrize("app_config", [{"TASKS_MAX_BODY_BYTES": 256}])
async def test_body_over_the_limit_without_content_length_gets_413(
    client: Client, unchanged: Any
) -> None:
    async with unchanged():
        connection = client.request(
            "/tasks", method="POST", headers={"Content-Type": "application/json"}
        )
        async with connection:
            await connection.send(b'{"name": "demo.echo", "args": ["' + b"x" * 200)
            await connection.send(b"x" * 200 + b'"]}')
            await connection.send_complete()
        response = await connection.as_response()
        assert response.status_code == 413


async def test_default_limit_is_one_mebibyte(client: Client, unchanged: Any) -> None:
    small = json.dumps({"name": "demo.echo", "args": ["x" * 1000_000]}).encode()
    assert (await post_raw(client, small)).status_code == 202
    async with unchanged():
        big = json.dumps({"name": "demo.echo", "args": ["x" * (1 << 20)]}).encode()
        assert (await post_raw(client, big)).status_code == 413


@pytest.mark.parametrize("app_config", [{"TASKS_MAX_QUEUED": 1, "TASKS_WORKERS": False}])
async def test_full_backlog_gets_429_with_retry_after(client: Client, unchanged: Any) -> None:
    assert (await client.post("/tasks", json={"name": "demo.echo", "args": [1]})).status_code == 202
    async with unchanged():
        response = await client.post("/tasks", json={"name": "demo.echo", "args": [2]})
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) > 0
        assert (await response.get_json())["error"]["code"] == "queue_full"


async def test_draining_gets_503_with_retry_after(client: Client, unchanged: Any) -> None:
    async with unchanged():
        tasks.runtime.accepting = False
        try:
            response = await client.post("/tasks", json={"name": "demo.echo", "args": [1]})
            ready = await client.get("/readyz")
        finally:
            tasks.runtime.accepting = True
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert (await response.get_json())["error"]["code"] == "not_accepting"
    assert ready.status_code == 503


async def test_queue_and_an_absolute_run_at_are_stored(client: Client) -> None:
    response = await client.post(
        "/tasks",
        json={
            "name": "demo.echo",
            "args": [1],
            "queue": "reports",
            "run_at": "2030-01-02T09:00:00+01:00",
        },
    )
    assert response.status_code == 202
    task = await response.get_json()
    assert (task["queue"], task["run_at"]) == ("reports", "2030-01-02T08:00:00Z")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"run_at": "2030-01-02T09:00:00"}, "run_at"),  # no offset
        ({"run_at": "soon"}, "run_at"),
        ({"run_at": 0}, "run_at"),  # not Unix seconds
        ({"queue": "bad queue!"}, "queue"),
        ({"queue": ""}, "queue"),
        ({"delay": 5, "run_at": "2030-01-02T09:00:00Z"}, "run_at"),
    ],
)
async def test_bad_queue_or_run_at_is_refused_naming_the_field(
    client: Client, unchanged: Any, body: dict[str, Any], field: str
) -> None:
    async with unchanged():
        response = await client.post("/tasks", json={"name": "demo.echo", "args": [1], **body})
    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["code"] == "invalid_body"
    assert field in error["message"]
