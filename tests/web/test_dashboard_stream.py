"""The dashboard's page-level event stream (``GET /tasks/dashboard/events``), on each backend.

Changes made by another process (here: a second store on the same database,
which the app's event bus never hears of) reach the stream by its polling.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks
from tasks.model import Finish, Progress, State
from tests.store.conftest import make_store
from tests.store.contract import new_task
from tests.web.server import hypercorn
from tests.web.test_api import enqueue
from tests.web.test_events import read_until

STREAM = "/tasks/dashboard/events"


def parse(raw: str) -> list[tuple[str, Any]]:
    """(event name, data) of every event in an event-stream text."""
    events = []
    for block in raw.split("\n\n"):
        fields = dict(
            line.partition(": ")[::2]
            for line in block.splitlines()
            if line and not line.startswith(":")
        )
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def states(events: list[tuple[str, Any]], task_id: str) -> list[str]:
    return [
        data["state"] for kind, data in events if kind in ("task", "new") and data["id"] == task_id
    ]


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_stream_follows_changes_and_new_tasks_of_other_processes(
    client: Client, backend_url: str
) -> None:
    shown = [(await enqueue(client, "demo.echo", n))["id"] for n in range(3)]
    url = f"{STREAM}?ids={','.join(shown)}&after={shown[-1]}"
    other = make_store(backend_url)  # another process's store: no event reaches this app
    await other.open()
    try:
        async with client.request(url) as connection:
            first = await read_until(
                connection, lambda t: t.count("event: task") == 3 and "event: counts" in t
            )
            [claimed] = await other.claim("elsewhere", ["default"], 1, 30)
            await other.set_progress(claimed.id, "elsewhere", Progress(1, 2, "half"))
            [inserted] = await other.insert([new_task("demo.echo")])
            seen = await read_until(
                connection,
                lambda t: '"half"' in t and inserted.id in t,
                timeout=20,
            )
            await other.finish([Finish(claimed.id, "elsewhere", State.SUCCEEDED, "7")])
            seen += await read_until(connection, lambda t: '"succeeded"' in t, timeout=20)
            await connection.disconnect()
    finally:
        await other.close()
    events = parse(first + seen)
    assert [data["id"] for kind, data in parse(first) if kind == "task"] == shown[::-1]
    assert states(events, claimed.id)[-2:] == ["running", "succeeded"]
    assert ("new", inserted.id) in [(kind, data["id"]) for kind, data in events if kind != "counts"]
    [counts] = [data for kind, data in parse(first) if kind == "counts"]
    assert counts["queued"] == 3
    assert all(len(json.dumps(data)) < 4096 for _, data in events)  # small events


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_stream_refuses_bad_queries(client: Client) -> None:
    for query, named in (
        ("ids=nope", "not a task id"),
        ("ids=" + ",".join(["f" * 32] * 201), "at most 200"),
        ("after=xyz", "not a task id"),
        ("state=bogus", "state"),
    ):
        response = await client.get(f"{STREAM}?{query}")
        assert response.status_code == 400, query
        assert named in (await response.get_json())["error"]["message"], query


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_stream_ends_when_the_task_system_stops(client: Client) -> None:
    task = await enqueue(client, "demo.echo", 1)
    connection = client.request(f"{STREAM}?ids={task['id']}")
    try:
        async with asyncio.timeout(15), connection:
            await read_until(connection, lambda t: "event: task" in t)
            tasks.runtime.accepting = False
        # Leaving the block waited for the response to end by itself.
    finally:
        tasks.runtime.accepting = True


@pytest.mark.slow
async def test_sigterm_ends_open_dashboard_streams(tmp_path: Path) -> None:
    drain = 2.0
    env = {"TASKS_SHUTDOWN_TIMEOUT": str(drain)}
    with hypercorn(tmp_path, "--graceful-timeout", "60", env=env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            opened = asyncio.Event()

            async def read() -> str:
                text = ""
                async with client.stream("GET", STREAM) as response:
                    async for chunk in response.aiter_text():
                        text += chunk
                        if "event: counts" in text:
                            opened.set()
                return text

            reader = asyncio.create_task(read())
            async with asyncio.timeout(30):
                await opened.wait()
            signalled = time.monotonic()
            server.signal(signal.SIGTERM)
            async with asyncio.timeout(drain + 15):
                text = await reader
            await asyncio.to_thread(server.wait_exit, drain + 15)
            elapsed = time.monotonic() - signalled
    assert server.returncode == 0, server.output()
    assert elapsed < drain + 15  # not Hypercorn's 60 s graceful timeout
    assert "event: counts" in text
