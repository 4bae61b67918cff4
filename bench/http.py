"""Over HTTP: ``POST /tasks`` against ``GET /healthz`` on one Hypercorn worker, with wrk.

Starts ``hypercorn asgi:app`` (one worker, no access log) on a free local port
with a fresh SQLite file, runs ``wrk -c32`` against ``GET /healthz`` and then
against ``POST /tasks`` (a ``demo.echo`` task per request), and checks that
every accepted task completes. Skips with a message if wrk or the HTTP API is
missing.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from bench.common import Figure, options_from, parser

DURATION = 5
CONNECTIONS = 32
_POST_LUA = """wrk.method = "POST"
wrk.body = '{"name": "demo.echo", "args": [1]}'
wrk.headers["Content-Type"] = "application/json"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hypercorn exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 in time")


def _wrk(url: str, script: str | None, duration: int) -> tuple[float, int, int]:
    """Requests/s, total requests and non-2xx answers (plus socket errors)."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", url]
    if script:
        command[1:1] = ["-s", script]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = int(bad.group(1)) if bad else 0
    if errors:
        failed += sum(int(n) for n in errors.groups())
    return rate, total, failed


def measure(duration: int = DURATION, synchronous: str = "NORMAL") -> list[Figure]:
    """Run both wrk loads against one server and return their rates."""
    folder = tempfile.mkdtemp(prefix="tasks-bench-http-")
    database = os.path.join(folder, "bench.sqlite3")
    port = _free_port()
    env = {
        **os.environ,
        "TASKS_DATABASE_URL": f"sqlite:///{database}",
        "TASKS_SQLITE_SYNCHRONOUS": synchronous,
        "TASKS_CONCURRENCY": "100",
    }
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = [sys.executable, "-m", "hypercorn", "--workers", "1", "--bind"]
    command += [f"127.0.0.1:{port}", "--graceful-timeout", "5", "asgi:app"]
    server = subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/healthz", server, time.monotonic() + 60)
        lua = os.path.join(folder, "post.lua")
        with open(lua, "w") as f:
            f.write(_POST_LUA)
        health, _, _ = _wrk(f"{base}/healthz", None, duration)
        post, total, failed = _wrk(f"{base}/tasks", lua, duration)
        accepted = total - failed
        deadline = time.monotonic() + 120
        with sqlite3.connect(database, timeout=30) as db:
            while True:
                rows, done = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(state = 'succeeded'), 0) FROM tasks"
                ).fetchone()
                if done >= accepted and rows == done:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {done} of {rows} stored tasks completed")
                time.sleep(0.2)
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)
    return [
        Figure(f"GET /healthz (wrk -c{CONNECTIONS}, 1 worker)", health, "req/s"),
        Figure(f"POST /tasks (wrk -c{CONNECTIONS}, 1 worker)", post, "req/s"),
        Figure("POST /tasks / GET /healthz", post / health, "ratio", ">= 0.8"),
        Figure("HTTP tasks stored, every one completed", rows, "tasks", f">= {accepted} accepted"),
    ]


def skip_reason() -> str | None:
    """Why this benchmark cannot run here, or None."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (apt-get install -y wrk)"
    try:
        import tasks.web  # noqa: F401
    except ImportError:
        return "the HTTP API (tasks.web) is not available"
    return None


def main() -> None:
    """Command line entry point."""
    p = parser(__doc__ or "")
    p.add_argument("--duration", type=int, default=DURATION)
    args = p.parse_args()
    options = options_from(args)
    if options.backend != "sqlite":
        print("skipped: the HTTP benchmark runs the reference app on SQLite only")
        return
    reason = skip_reason()
    if reason:
        print(f"skipped: {reason}")
        return
    for figure in measure(args.duration, options.synchronous):
        print(figure.line(), flush=True)


if __name__ == "__main__":
    main()
