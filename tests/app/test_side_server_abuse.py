"""Scenario 6 under attack: the side server keeps to its folder and bounds what clients cost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart

from app.scenarios.side_protocol import create_inside
from app.scenarios.side_server import SideServer
from tests.app.server import HypercornServer
from tests.app.test_side_server import upload
from tests.conftest import eventually
from tests.servers import serving


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "SIDE_SERVER_MAX_CONNECTIONS": 2, "SIDE_SERVER_UPLOAD_SECONDS": 1}


def uploads_folder(app: Quart) -> Path:
    return Path(app.instance_path) / "uploads"


async def first_line(port: int, payload: bytes) -> str:
    """Send ``payload`` and read one line; a refused client may see a reset after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return line.decode()


async def parts(app: Quart, count: int) -> bool:
    """True when ``count`` uploads are being received (one ``.part`` file each)."""
    return len(list(uploads_folder(app).glob("*.part"))) == count


async def test_names_cannot_leave_the_uploads_folder(app: Quart, tmp_path: Path) -> None:
    server: SideServer = app.extensions["side_server"]
    for name in ("../escape.txt", "/tmp/escape.txt", "..", ".hidden", "a/b", "a\\b", "%2e%2e"):
        answer = await upload(server.port, f"{name} 3\nabc".encode())
        assert answer.startswith("ERR bad_name"), name
    assert list(uploads_folder(app).iterdir()) == []
    assert not (tmp_path / "escape.txt").exists()


async def test_a_planted_symlink_is_never_written_through(
    app: Quart, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server: SideServer = app.extensions["side_server"]
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    # Make the server's random prefix known, as an attacker guessing it would need.
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=0))
    (uploads_folder(app) / f"{'0' * 12}-a.txt.part").symlink_to(outside)
    answer = await upload(server.port, b"a.txt 5\nevil!")
    assert answer.startswith("ERR unavailable"), answer
    assert outside.read_text() == "precious"


def test_create_inside_refuses_anything_but_a_new_plain_name(tmp_path: Path) -> None:
    folder = tmp_path / "uploads"
    folder.mkdir()
    (folder / "link").symlink_to(tmp_path / "target")
    with pytest.raises(FileExistsError):
        create_inside(folder, "link")
    assert not (tmp_path / "target").exists()
    for name in ("../x", "/abs", "..", "", "a\0b"):
        with pytest.raises(ValueError, match="plain file name"):
            create_inside(folder, name)
    with create_inside(folder, "fine.bin") as file:
        file.write(b"ok")
    assert (folder / "fine.bin").read_bytes() == b"ok"


async def test_clients_past_the_connection_cap_are_refused_at_once(app: Quart) -> None:
    server: SideServer = app.extensions["side_server"]
    held = []
    for number in range(2):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(f"held-{number}.bin 100\n".encode() + b"x")
        await writer.drain()
        held.append((reader, writer))

    await eventually(lambda: parts(app, 2), 10)
    answer = await first_line(server.port, b"third.txt 3\nabc")
    assert answer.startswith("ERR busy"), answer
    for _, writer in held:
        writer.close()
        await writer.wait_closed()
    await eventually(lambda: parts(app, 0), 10)
    assert (await upload(server.port, b"later.txt 3\nabc")).startswith("OK")


async def test_a_trickling_client_hits_the_upload_deadline(app: Quart) -> None:
    server: SideServer = app.extensions["side_server"]
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"slow.bin 1000\n")
    answer = asyncio.ensure_future(reader.readline())
    try:
        # One byte every 0.2 s: never idle for long, but it would take 200 s in all.
        for _ in range(75):  # 15 s at most, far past the 1 s deadline
            if answer.done():
                break
            writer.write(b"x")
            await writer.drain()
            await asyncio.wait({answer}, timeout=0.2)
        assert answer.done(), "no answer while the client trickled for 15 s"
        assert answer.result().decode().startswith("ERR timeout an upload may take at most 1 s")
    finally:
        answer.cancel()
        writer.close()
    await eventually(lambda: parts(app, 0), 10)
    assert os.listdir(uploads_folder(app)) == []


@dataclass(eq=False)
class FewDescriptors(HypercornServer):
    """The reference app in Hypercorn with 512 file descriptors (a small ``ulimit -n``)."""

    def command(self) -> list[str]:
        return ["sh", "-c", 'ulimit -n 512 && exec "$@"', "sh", *super().command()]


async def open_slow_upload(port: int, number: int) -> tuple[asyncio.StreamReader, Any]:
    """A client that announces a big file, sends 10 bytes and then nothing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"slow-{number}.bin 1000000\n".encode() + b"x" * 10)
    await writer.drain()
    return reader, writer


@pytest.mark.slow
async def test_a_flood_of_bad_clients_neither_stalls_http_nor_floods_the_log(
    tmp_path: Path,
) -> None:
    server = FewDescriptors(tmp_path)
    with serving(server):
        quiet = len(server.output())
        slow = await asyncio.gather(*(open_slow_upload(server.side_port, n) for n in range(400)))
        bad = [first_line(server.side_port, b"../escape 1\nx") for _ in range(300)]
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
            answers = await asyncio.gather(*bad, api.get("/healthz"))
            # Within the client's 10 s timeout while 400 uploads hang and 300 more fail.
            assert answers[-1].status_code == 200
            assert all(line.startswith(("ERR bad_name", "ERR busy")) for line in answers[:-1])
            enqueued = await api.post("/tasks", json={"name": "demo.echo", "args": [1]})
            assert enqueued.status_code == 202
        lines = [asyncio.ensure_future(reader.readline()) for reader, _ in slow]
        await asyncio.wait(lines, timeout=10)  # the 64 within the cap never answer
        for line in lines:
            line.cancel()
        ended = [line for line in lines if line.done() and not line.cancelled()]
        # Past the cap, a client is told "busy", or, once too many refusals wait for
        # their clients' input, its connection is reset: it never hangs.
        assert len(ended) == 400 - 64
        told = [line.result() for line in ended if line.exception() is None]
        assert told
        assert all(line.startswith(b"ERR busy") for line in told)
        failed = [line.exception() for line in ended if line.exception() is not None]
        assert all(isinstance(error, ConnectionError) for error in failed)
        grown = len(server.output()) - quiet
        assert grown < 64 * 1024, server.output()[-3000:]
        for _, writer in slow:
            writer.close()

        async def uploads_again() -> bool:  # once the server has seen the slow ones go
            return (await first_line(server.side_port, b"after.txt 2\nok")).startswith("OK")

        await eventually(uploads_again, 30, interval=0.2)
        assert server.stop(signal.SIGTERM) == 0
        assert "client messages dropped" in server.output()
