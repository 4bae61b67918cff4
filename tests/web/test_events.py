"""GET /tasks/<id>/events with Quart's test client: order, termination, resume."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks
from tasks.web.sse import MAX_VERSION, parse_last_event_id
from tests.web.test_api import enqueue, until_state


def parse_events(raw: str) -> list[dict[str, Any]]:
    """The ``task`` events of an event-stream body, as dicts with id and data."""
    events = []
    for block in raw.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
        if fields.get("event") == "task":
            events.append({"id": int(fields["id"]), "data": json.loads(fields["data"])})
    return events


async def read_until(connection: Any, done: Any, timeout: float = 15.0) -> str:
    """Read stream chunks until ``done(text)`` or the stream ends."""
    text = ""
    async with asyncio.timeout(timeout):
        while not done(text):
            chunk = await connection.receive()
            if not chunk:
                break
            text += chunk.decode()
    return text


async def test_events_arrive_in_order_and_end_at_terminal_state(client: Client) -> None:
    task = await enqueue(client, "demo.progress", 5, 0.3)
    response = await client.get(f"/tasks/{task['id']}/events")
    assert response.status_code == 200
    assert response.content_type.startswith("text/event-stream")
    events = parse_events(await response.get_data(as_text=True))
    versions = [e["id"] for e in events]
    assert versions == sorted(set(versions))
    assert [e["data"]["version"] for e in events] == versions
    currents = [e["data"]["progress"]["current"] for e in events]
    assert currents == sorted(currents)
    assert any(0 < c < 5 for c in currents), currents
    assert events[-1]["data"]["state"] == "succeeded"
    result = '"5 steps done"'
    assert events[-1]["data"]["result"] == {"bytes": 14, "preview": result, "truncated": False}
    assert events[-1]["data"]["url"] == f"/tasks/{task['id']}"
    assert all(e["data"]["state"] != "succeeded" for e in events[:-1])


async def test_events_for_unknown_task_is_404(client: Client) -> None:
    response = await client.get(f"/tasks/{'0' * 32}/events")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "task_not_found"


async def test_resume_after_the_end_still_gets_the_terminal_event(client: Client) -> None:
    task = await enqueue(client, "demo.echo", 1)
    done = await until_state(client, task["id"], "succeeded")
    for last in (done["version"] - 1, done["version"], done["version"] + 5):
        response = await client.get(
            f"/tasks/{task['id']}/events", headers={"Last-Event-ID": str(last)}
        )
        events = parse_events(await response.get_data(as_text=True))
        assert [e["data"]["state"] for e in events] == ["succeeded"]


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_resume_with_current_version_waits_for_the_next_change(client: Client) -> None:
    task = await enqueue(client, "demo.echo", 1)
    connection = client.request(
        f"/tasks/{task['id']}/events", headers={"Last-Event-ID": str(task["version"])}
    )
    async with connection:
        head = await read_until(connection, lambda text: "retry:" in text)
        assert parse_events(head) == []
        assert (await client.post(f"/tasks/{task['id']}/cancel")).status_code == 202
        rest = await read_until(connection, lambda text: "cancelled" in text)
    events = parse_events(head + rest)
    assert [e["data"]["state"] for e in events] == ["cancelled"]
    assert events[0]["id"] > task["version"]


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
@pytest.mark.parametrize(
    "last_event_id",
    ["\u00b2", "1" * 5000, "9" * 20, "\uff11", "-1", "1.0", "0x1", "", "1 1"],
    ids=[
        "superscript",
        "5000-digits",
        "over-int64",
        "fullwidth",
        "negative",
        "float",
        "hex",
        "empty",
        "two",
    ],
)
async def test_a_last_event_id_that_is_not_a_plain_version_is_ignored(
    client: Client, last_event_id: str
) -> None:
    # Ignored means: the stream starts as for a new client, with the current task at once.
    task = await enqueue(client, "demo.echo", 1)
    connection = client.request(
        f"/tasks/{task['id']}/events", headers={"Last-Event-ID": last_event_id}
    )
    async with connection:
        head = await read_until(connection, lambda text: "event: task" in text)
        await connection.disconnect()
    events = parse_events(head)
    assert [(e["id"], e["data"]["state"]) for e in events] == [(task["version"], "queued")]


def test_last_event_id_parsing() -> None:
    # Header values reach the app as Latin-1 text; the test client cannot send
    # every such character, so the parser is also checked directly.
    assert parse_last_event_id(" 42\t") == 42
    assert parse_last_event_id("0") == 0
    assert parse_last_event_id(str(MAX_VERSION)) == MAX_VERSION
    for value in ("\u00b2", "1\u00b9", "\uff11", "\u0661", str(MAX_VERSION + 1), "1" * 5000, None):
        assert parse_last_event_id(value) is None, value


async def test_streams_end_when_the_task_system_stops_accepting(client: Client) -> None:
    task = await enqueue(client, "demo.sleep", 60)
    await until_state(client, task["id"], "running")
    connection = client.request(f"/tasks/{task['id']}/events")
    try:
        async with asyncio.timeout(15), connection:
            first = await read_until(connection, lambda text: "running" in text)
            tasks.runtime.accepting = False
        # Leaving the block waited for the response to end by itself.
    finally:
        tasks.runtime.accepting = True
    assert [e["data"]["state"] for e in parse_events(first)] == ["running"]
    await client.post(f"/tasks/{task['id']}/cancel")
