"""Scenario 6: the TCP side server, through the app's lifespan and as a real Hypercorn process."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as QuartClient

from app.extensions import tasks
from app.scenarios.side_server import SideServer
from tasks import State
from tests.app.server import HypercornServer, send_file
from tests.servers import poll


def contents(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


async def upload(port: int, payload: bytes, *, eof: bool = False) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    if eof:
        writer.write_eof()
    answer = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    await writer.wait_closed()
    return answer.decode()


async def test_received_file_is_stored_recorded_and_checksummed(
    app: Quart, client: QuartClient
) -> None:
    server: SideServer = app.extensions["side_server"]
    data = os.urandom(200_000)
    status, upload_id, task_id = (await upload(server.port, b"blob.bin 200000\n" + data)).split()
    assert status == "OK"
    unsized = (await upload(server.port, b"note.txt\nhello", eof=True)).split()
    assert unsized[0] == "OK"

    record = await tasks.wait(task_id, 60)
    assert record.state == State.SUCCEEDED, record.error
    assert record.result == {"sha256": hashlib.sha256(data).hexdigest(), "size": 200_000}

    listing = (await (await client.get("/uploads")).get_json())["uploads"]
    by_id = {row["id"]: row for row in listing}
    row = by_id[int(upload_id)]
    assert (row["name"], row["size"], row["task_id"]) == ("blob.bin", 200_000, task_id)
    assert row["checksum"]["state"] == "succeeded"
    assert contents(row["path"]) == data
    assert Path(row["path"]).parent == Path(app.instance_path) / "uploads"
    assert contents(by_id[int(unsized[1])]["path"]) == b"hello"


async def test_refused_uploads_leave_nothing_behind(app: Quart, client: QuartClient) -> None:
    server: SideServer = app.extensions["side_server"]
    cases = {
        b"../etc/passwd 3\nabc": "ERR bad_name",
        b"a.txt lots\nabc": "ERR bad_size",
        b"a.txt 1 2\n": "ERR bad_header",
        b"big.bin 999999999999\n": "ERR too_large",
    }
    for payload, expected in cases.items():
        assert (await upload(server.port, payload)).startswith(expected), payload
    truncated = await upload(server.port, b"short.txt 10\nabc", eof=True)
    assert truncated.startswith("ERR truncated expected 10 bytes, received 3")
    assert list((Path(app.instance_path) / "uploads").iterdir()) == []
    assert (await (await client.get("/uploads")).get_json())["uploads"] == []


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[HypercornServer]]:
    """Servers started by a test; killed at teardown whatever happened."""
    servers: list[HypercornServer] = []
    yield servers
    for server in servers:
        server.kill()


def checked_upload(server: HypercornServer, name: str, data: bytes) -> dict[str, object]:
    """Send a file, then wait until ``GET /uploads`` shows its checksum task succeeded."""
    status, upload_id, _ = send_file(server.side_port, name, data).split()
    assert status == "OK"

    def finished() -> dict[str, object] | None:
        rows = httpx.get(f"{server.url}/uploads", timeout=10).json()["uploads"]
        row = next(r for r in rows if r["id"] == int(upload_id))
        return row if row["checksum"]["state"] == "succeeded" else None

    row: dict[str, object] = poll(finished, 60, f"the checksum of {name}")
    assert row["checksum"] == {
        "state": "succeeded",
        "result": {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
    }
    assert Path(str(row["path"])).read_bytes() == data
    return row


def assert_clean_log(server: HypercornServer) -> None:
    log = server.output()
    assert "Traceback" not in log, log
    assert "Address already in use" not in log, log


@pytest.mark.slow
def test_starts_with_the_app_and_stops_cleanly_on_sigterm(
    tmp_path: Path, served: list[HypercornServer]
) -> None:
    server = HypercornServer(tmp_path)
    served.append(server)
    server.start()
    row = checked_upload(server, "report.csv", b"a,b\n1,2\n")
    assert str(row["path"]).startswith(str(tmp_path / "instance" / "uploads"))

    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 30  # well inside Hypercorn's shutdown_timeout
    assert "side server on port" in server.output()
    assert_clean_log(server)


@pytest.mark.slow
def test_survives_reload_and_stops_on_ctrl_c(tmp_path: Path, served: list[HypercornServer]) -> None:
    # A module the reloader watches: sitecustomize is imported at interpreter start.
    watched = tmp_path / "site" / "sitecustomize.py"
    watched.parent.mkdir()
    watched.write_text("# watched by hypercorn --reload\n")
    server = HypercornServer(tmp_path, args=["--reload"], env={"PYTHONPATH": str(watched.parent)})
    served.append(server)
    server.start()
    checked_upload(server, "before.txt", b"before the reload")

    later = time.time() + 5
    os.utime(watched, (later, later))
    server.wait_for_output("side server listening", count=2)
    checked_upload(server, "after.txt", b"after the reload")

    assert server.stop(signal.SIGINT) == 0
    assert server.output().count("side server on port") == 2
    assert_clean_log(server)
    assert "KeyboardInterrupt" not in server.output()


@pytest.mark.slow
def test_two_workers_share_the_port(tmp_path: Path, served: list[HypercornServer]) -> None:
    server = HypercornServer(tmp_path, workers=2)
    served.append(server)
    server.start()
    pids = {
        line.rsplit("pid ", 1)[1].rstrip(")")
        for line in server.output().splitlines()
        if "side server listening" in line
    }
    assert len(pids) == 2
    for number in range(6):
        checked_upload(server, f"part-{number}.bin", os.urandom(1000 + number))
    assert server.stop(signal.SIGTERM) == 0
    assert_clean_log(server)


async def test_manifest_fans_out_over_the_uploads_and_sums_them_up(
    app: Quart, client: QuartClient
) -> None:
    """A chord: one checksum step per file in parallel, then one step that gets them all."""
    refused = await client.post("/uploads/manifest")
    assert refused.status_code == 409  # nothing uploaded yet
    assert (await refused.get_json())["error"]["code"] == "no_uploads"
    server: SideServer = app.extensions["side_server"]
    files = {f"part{n}.bin": os.urandom(1000 + n) for n in range(5)}
    for name, data in files.items():
        answer = await upload(server.port, f"{name} {len(data)}\n".encode() + data)
        assert answer.startswith("OK")
    response = await client.post("/uploads/manifest")
    assert response.status_code == 202
    body = await response.get_json()
    assert body["files"] == 5
    workflow = await tasks.get_workflow(body["workflow"])
    assert workflow.kind == "chord"
    final = body["result"].rsplit("/", 1)[1]
    record = await tasks.wait(final, 60)
    assert record.state == State.SUCCEEDED, record.error
    digest = hashlib.sha256()
    for name in reversed(list(files)):  # newest first
        digest.update(f"{name}\0{hashlib.sha256(files[name]).hexdigest()}\n".encode())
    assert record.result == {
        "files": 5,
        "bytes": sum(len(d) for d in files.values()),
        "sha256": digest.hexdigest(),
    }
