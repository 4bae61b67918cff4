"""Real Hypercorn: work accepted via the compat APIs before SIGTERM completes after restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
HYPERCORN = str(Path(sys.executable).with_name("hypercorn"))
T = TypeVar("T")

pytestmark = pytest.mark.slow


def _poll(check: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except httpx.TransportError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {value!r})")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _hypercorn(database: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    env = {
        **os.environ,
        "TASKS_DATABASE_URL": f"sqlite:///{database}",
        "TASKS_SHUTDOWN_TIMEOUT": "0.3",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [HYPERCORN, "--bind", f"127.0.0.1:{port}", "tests.compat.served_app:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _poll(lambda: httpx.get(f"{base}/health").json()["ok"], 60, "server ready")
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_accepted_work_survives_sigterm_and_restart(tmp_path: Path) -> None:
    database, log = tmp_path / "tasks.sqlite3", tmp_path / "server.log"
    with _hypercorn(database, log) as (server, base):
        running = httpx.post(f"{base}/celery?steps=40").json()["id"]
        delayed = httpx.post(f"{base}/celery?steps=2&countdown=1").json()["id"]
        items = [httpx.post(f"{base}/queue?data=item-{n}").json()["id"] for n in range(3)]

        def crunching() -> Any:
            return httpx.get(f"{base}/celery/{running}").json()["state"] == "PROGRESS"

        _poll(crunching, 30, "the long task reports progress")
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) is not None
    logged = log.read_text()
    assert "requeueing" in logged, logged

    with _hypercorn(database, log) as (_, base):

        def outcome(task_id: str) -> Any:
            body = httpx.get(f"{base}/celery/{task_id}").json()
            return body if body["state"] in ("SUCCESS", "FAILURE", "REVOKED") else None

        assert _poll(lambda: outcome(running), 60, "long task done")["info"] == {
            "steps": 40,
            "attempt": 1,
        }
        assert _poll(lambda: outcome(delayed), 60, "delayed task done")["state"] == "SUCCESS"
        _poll(lambda: httpx.get(f"{base}/queue").json()["size"] == 0, 60, "queue drained")
        for n, task_id in enumerate(items):
            record = httpx.get(f"{base}/task/{task_id}").json()
            assert (record["state"], record["result"]) == ("succeeded", {"stored": f"item-{n}"})
