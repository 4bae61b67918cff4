"""A real ``hypercorn asgi:app`` process on a free port, for the slow web tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
HYPERCORN = Path(sys.executable).with_name("hypercorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def hypercorn(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, ready_timeout: float = 60
) -> Iterator[Server]:
    """Start the reference app; yield once ``/readyz`` answers 200; kill it afterwards.

    The task store is a SQLite file in ``tmp_path`` unless ``env`` sets
    ``TASKS_DATABASE_URL`` (the tests pass ``backend_url`` there).
    """
    port = free_port()
    log = tmp_path / f"hypercorn-{port}.log"
    environ = {
        **os.environ,
        "TASKS_DATABASE_URL": f"sqlite:///{tmp_path / 'tasks.sqlite3'}",
        "APP_INSTANCE_PATH": str(tmp_path),
        "SIDE_SERVER_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    command = [str(HYPERCORN), "--bind", f"127.0.0.1:{port}", *args, "asgi:app"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own: teardown kills the workers too
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"hypercorn exited early:\n{server.output()}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"hypercorn not ready in {ready_timeout} s:\n{server.output()}"
                )
            time.sleep(0.1)
        yield server
    finally:
        # The whole group: killing only the master would leave its worker
        # processes running (and holding database connections) as orphans.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
