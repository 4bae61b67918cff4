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


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its child processes."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _wrk_cpu(
    pid: int, url: str, script: str | None, duration: int
) -> tuple[float, int, int, float]:
    """:func:`_wrk` plus the server's CPU milliseconds per request during the run."""
    before = _tree_cpu(pid)
    rate, total, failed = _wrk(url, script, duration)
    return rate, total, failed, (_tree_cpu(pid) - before) * 1000 / max(total, 1)


def measure(
    duration: int = DURATION, synchronous: str = "NORMAL", worker_process: bool = False
) -> list[Figure]:
    """Run both wrk loads against one server and return their rates.

    With ``worker_process`` the server only enqueues (``TASKS_WORKERS=false``)
    and a ``python -m tasks worker asgi:app`` process runs the tasks.
    """
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
    worker: subprocess.Popen[bytes] | None = None
    if worker_process:
        env["TASKS_WORKERS"] = "false"
        worker = subprocess.Popen(
            [sys.executable, "-m", "tasks", "worker", "asgi:app", "--log-level", "WARNING"],
            cwd=root,
            env={**env, "TASKS_WORKERS": "true"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    # The server's log goes to a file: a pipe nobody reads fills up after 64 KiB of
    # log lines (two per task at INFO) and then blocks the server mid-benchmark.
    log_path = os.path.join(folder, "server.log")
    log = open(log_path, "wb")  # noqa: SIM115 (closed with the server, below)
    server = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/healthz", server, time.monotonic() + 60)
        lua = os.path.join(folder, "post.lua")
        with open(lua, "w") as f:
            f.write(_POST_LUA)
        health, _, _, health_cpu = _wrk_cpu(server.pid, f"{base}/healthz", None, duration)
        post, total, failed, post_cpu = _wrk_cpu(server.pid, f"{base}/tasks", lua, duration)
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
                    with open(log_path, "rb") as written:
                        tail = written.read()[-2000:].decode(errors="replace")
                    raise RuntimeError(
                        f"only {done} of {rows} stored tasks completed; server log:\n{tail}"
                    )
                time.sleep(0.2)
    finally:
        for process in (server, worker):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
    where = " (tasks run in a worker process)" if worker_process else ""
    return [
        Figure(f"GET /healthz (wrk -c{CONNECTIONS}, 1 worker){where}", health, "req/s"),
        Figure(f"POST /tasks (wrk -c{CONNECTIONS}, 1 worker){where}", post, "req/s"),
        Figure(f"POST /tasks / GET /healthz{where}", post / health, "ratio", ">= 0.7"),
        Figure(f"server CPU per GET /healthz{where}", health_cpu, "ms"),
        Figure(f"server CPU per POST /tasks{where}", post_cpu, "ms"),
        Figure(f"CPU healthz / CPU POST{where}", health_cpu / post_cpu, "ratio"),
        Figure("HTTP: tasks accepted (2xx answers seen by wrk)", accepted, "tasks"),
        Figure("HTTP: tasks stored and completed", rows, "tasks", ">= accepted"),
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
    p.add_argument(
        "--worker-process",
        action="store_true",
        help="the server only enqueues; a `python -m tasks worker` process runs the tasks",
    )
    args = p.parse_args()
    options = options_from(args)
    if options.backend != "sqlite":
        print("skipped: the HTTP benchmark runs the reference app on SQLite only")
        return
    reason = skip_reason()
    if reason:
        print(f"skipped: {reason}")
        return
    for figure in measure(args.duration, options.synchronous, args.worker_process):
        print(figure.line(), flush=True)


if __name__ == "__main__":
    main()
