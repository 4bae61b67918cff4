"""The event streams against real Hypercorn processes: several workers, and shutdown.

Both run on each backend: a stream follows a task run by another worker by
re-reading it from the store, and the drain releases tasks there.
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

from tests.web.server import hypercorn

pytestmark = pytest.mark.slow


async def stream_events(
    client: httpx.AsyncClient,
    url: str,
    started: asyncio.Event | None = None,
    headers: dict[str, bytes] | None = None,
) -> list[dict[str, Any]]:
    """Read a task's event stream to its end; the parsed ``task`` events."""
    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    timeout = httpx.Timeout(30, read=None)
    async with client.stream("GET", url, timeout=timeout, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line:
                if not line.startswith(":"):
                    key, _, value = line.partition(": ")
                    fields[key] = value
                continue
            if fields.get("event") == "task":
                events.append({"id": int(fields["id"]), "data": json.loads(fields["data"])})
                if started is not None:
                    started.set()
            fields = {}
    return events


async def enqueue(client: httpx.AsyncClient, name: str, *args: Any) -> str:
    response = await client.post("/tasks", json={"name": name, "args": list(args)})
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


async def test_progress_events_in_order_across_two_workers(
    tmp_path: Path, backend_url: str
) -> None:
    with hypercorn(tmp_path, workers=2, env={"TASKS_DATABASE_URL": backend_url}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            ids = [await enqueue(client, "demo.progress", 8, 0.25) for _ in range(2)]

            async def follow(task_id: str) -> list[dict[str, Any]]:
                # A client (and so a connection) per stream: either worker may serve it.
                async with httpx.AsyncClient(base_url=server.url) as own:
                    return await stream_events(own, f"/tasks/{task_id}/events")

            async with asyncio.timeout(60):
                results = await asyncio.gather(*(follow(i) for i in ids))
    for events in results:
        versions = [e["id"] for e in events]
        assert versions == sorted(set(versions)), versions
        currents = [e["data"]["progress"]["current"] for e in events]
        assert currents == sorted(currents), currents
        assert any(0 < c < 8 for c in currents), currents
        assert [e["data"]["state"] for e in events].count("succeeded") == 1
        assert events[-1]["data"]["state"] == "succeeded"
        assert events[-1]["data"]["progress"]["current"] == 8


async def test_last_event_id_with_non_ascii_digits_is_ignored(tmp_path: Path) -> None:
    # Raw header bytes, as an attacker sends them: Quart reads header values as
    # Latin-1, so b"\xb2" is "\u00b2" (superscript two): str.isdigit() but not int().
    # SQLite only: this is about parsing the header, not about the store.
    with hypercorn(tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            task_id = await enqueue(client, "demo.echo", 1)
            url = f"/tasks/{task_id}/events"
            for raw in (b"\xb2", b"1\xb9", b"\xb3" * 5000):
                events = await stream_events(client, url, headers={"Last-Event-ID": raw})
                assert events, raw[:8]
                assert events[-1]["data"]["state"] == "succeeded"
    assert "Traceback" not in server.output()


async def test_sigterm_with_open_streams_exits_within_the_drain(
    tmp_path: Path, backend_url: str
) -> None:
    # Hypercorn would wait up to 60 s for open connections; the task drain gets 2 s.
    drain = 2.0
    env = {"TASKS_SHUTDOWN_TIMEOUT": str(drain), "TASKS_DATABASE_URL": backend_url}
    with hypercorn(tmp_path, "--graceful-timeout", "60", env=env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            ids = [await enqueue(client, "demo.sleep", 60) for _ in range(2)]
            opened = [asyncio.Event(), asyncio.Event()]
            readers = [
                asyncio.create_task(stream_events(client, f"/tasks/{i}/events", started))
                for i, started in zip(ids, opened, strict=True)
            ]
            async with asyncio.timeout(30):
                for started in opened:
                    await started.wait()
            signalled = time.monotonic()
            server.signal(signal.SIGTERM)
            async with asyncio.timeout(drain + 15):
                streams = await asyncio.gather(*readers)
            await asyncio.to_thread(server.wait_exit, drain + 15)
            elapsed = time.monotonic() - signalled
    assert server.returncode == 0, server.output()
    assert elapsed < drain + 15, f"took {elapsed:.1f} s:\n{server.output()}"
    for events in streams:
        assert events
        assert events[-1]["data"]["state"] in ("queued", "running")
    assert "Traceback" not in server.output()
