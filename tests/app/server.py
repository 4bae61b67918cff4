"""A real Hypercorn process serving ``asgi:app`` on free ports, for process-level tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
HYPERCORN = ROOT / ".venv" / "bin" / "hypercorn"
LISTENING = "side server listening"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Any, timeout: float, what: str) -> Any:
    """Poll ``check()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


class HypercornServer:
    """``hypercorn --bind 127.0.0.1:<port> [args] asgi:app`` with every file in ``folder``."""

    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.args = args
        self.port = free_port()
        self.side_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "server.log"
        self.env = {
            **os.environ,
            "TASKS_DATABASE_URL": f"sqlite:///{folder / 'tasks.sqlite3'}",
            "TASKS_PROCESSES": "1",
            "TASKS_SHUTDOWN_TIMEOUT": "3",
            "APP_INSTANCE_PATH": str(folder / "instance"),
            "SIDE_SERVER_PORT": str(self.side_port),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, workers: int = 1) -> HypercornServer:
        """Start and wait until HTTP answers and every worker's side server listens."""
        command = [str(HYPERCORN), "--bind", f"127.0.0.1:{self.port}", *self.args, "asgi:app"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, like a terminal job
            )
        self.wait_for_log(LISTENING, workers)
        wait_until(self._http_ready, 60, "HTTP to answer")
        return self

    def _http_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/records", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 60) -> None:
        """Wait until ``text`` appears ``count`` times in the log; fail if the server exits."""

        def seen() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{self.log}")
            return self.log.count(text) >= count

        wait_until(seen, timeout, f"{count} x {text!r} in the log")

    def stop(self, sig: signal.Signals, timeout: float = 60) -> int:
        """Stop the server; return its exit code.

        SIGINT goes to the whole process group, as Ctrl-C in a terminal does;
        any other signal to the main process only, as ``kill PID`` does
        (Hypercorn's workers leave SIGTERM to the main process).
        """
        assert self.process is not None
        if sig == signal.SIGINT:
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """Kill whatever is left of the process group (teardown)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def send_file(port: int, name: str, data: bytes, *, sized: bool = True) -> str:
    """Upload ``data`` to the side server; returns its one-line answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        header = f"{name} {len(data)}\n" if sized else f"{name}\n"
        sock.sendall(header.encode() + data)
        if not sized:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(1024)
            if not chunk:
                break
            answer += chunk
    return answer.decode()
