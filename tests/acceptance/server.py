"""A real Hypercorn server for acceptance tests: start, signal, observe, always kill.

:class:`Server` runs ``.venv/bin/hypercorn`` from the repository root in a
process group of its own (``start_new_session=True``), so a test can signal
the master, one worker, or the whole group the way systemd does. Output goes
to a file the test can read; teardown kills whatever is left of the group.
Every wait polls with a deadline; nothing sleeps in place of synchronisation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tasks.model import NewTask, new_id
from tasks.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
HYPERCORN = str(Path(sys.executable).with_name("hypercorn"))
APP = "tests.acceptance.served:app"
T = TypeVar("T")


def poll(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last value: {value!r})")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _proc_table() -> list[tuple[int, int, int]]:
    """(pid, ppid, pgid) of every live, non-zombie process."""
    rows = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            rows.append((int(entry), int(fields[1]), int(fields[2])))
    return rows


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@dataclass
class Server:
    """One Hypercorn server (master and workers) on a tmp SQLite file."""

    root: Path
    workers: int = 1
    reload: bool = False
    graceful_timeout: int = 5
    app: str = APP
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log_offset: int = 0

    @property
    def db_path(self) -> Path:
        """The task database shared by every worker and restart."""
        return self.root / "tasks.sqlite3"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def log_path(self) -> Path:
        """Combined stdout and stderr of every start."""
        return self.root / "server.log"

    @property
    def executions_path(self) -> Path:
        """One ``started``/``succeeded`` line per task run (see ``served.py``)."""
        return self.root / "executions.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [HYPERCORN, "-b", f"127.0.0.1:{self.port}", "-w", str(self.workers)]
        cmd += ["--graceful-timeout", str(self.graceful_timeout)]
        if self.reload:
            cmd.append("--reload")
        return [*cmd, self.app]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKS_")}
        env.update(
            PYTHONUNBUFFERED="1",
            TASKS_DATABASE_URL=self.database_url,
            TASKS_LEASE_SECONDS="2",
            TASKS_HEARTBEAT_SECONDS="0.5",
            TASKS_POLL_INTERVAL="0.2",
            TASKS_SHUTDOWN_TIMEOUT="5",
            TASKS_PROCESSES="1",
            ACCEPT_EXECUTION_LOG=str(self.executions_path),
            APP_INSTANCE_PATH=str(self.root / "instance"),
            SIDE_SERVER_ENABLED="false",
        )
        env.update(self.env)
        return env

    # -- lifecycle -----------------------------------------------------------

    def start(self, *, ready: bool = True, timeout: float = 60.0) -> None:
        """Start the server; with ``ready``, wait until every worker runs its tasks."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        if ready:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until every worker started its task system and the port answers."""

        def check() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError(f"server exited during startup:\n{self.output()}")
            started = self.output().count("tasks started")
            return started >= self.workers and self._port_open()

        poll(check, timeout, "server ready")

    def _port_open(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def output(self, *, all_starts: bool = False) -> str:
        """What the server printed since the last start (or over every start)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(0 if all_starts else self._log_offset)
            return log.read().decode(errors="replace")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def group_pids(self) -> list[int]:
        """Every live process of the server's process group (master, workers, pools)."""
        if self.proc is None:
            return []
        return [pid for pid, _, pgid in _proc_table() if pgid == self.proc.pid]

    def worker_pids(self) -> list[int]:
        """The Hypercorn workers: spawned children of the master (not pool processes)."""
        table = _proc_table()
        group = {pid for pid, _, pgid in table if pgid == self.pid}
        return sorted(
            pid
            for pid, ppid, _ in table
            if ppid == self.pid
            and pid in group
            and "spawn_main" in _cmdline(pid)
            and "resource_tracker" not in _cmdline(pid)
        )

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the master only (what Ctrl-C in a shell does not do)."""
        os.kill(self.pid, sig)

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to every process of the group (systemd KillMode=control-group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the master to exit; return its exit code."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"server still running {timeout} s later:\n{self.output()[-3000:]}"
            ) from None

    def wait_group_gone(self, timeout: float) -> None:
        """Wait until no process of the group is left (orphaned workers included)."""
        poll(lambda: not self.group_pids(), timeout, "every server process gone")

    def kill(self) -> None:
        """SIGKILL the whole group and reap the master (teardown; safe to repeat)."""
        if self.proc is None:
            return
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        with contextlib.suppress(AssertionError):
            self.wait_group_gone(10)

    # -- the task store, seen from outside -----------------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=30)) as db:
            return db.execute(sql, params).fetchall()

    def states(self, ids: Sequence[str] | None = None) -> Counter[str]:
        """How many tasks (of ``ids``, or all) are in each state."""
        rows = self._query("SELECT id, state FROM tasks")
        wanted = None if ids is None else set(ids)
        return Counter(state for id_, state in rows if wanted is None or id_ in wanted)

    def ids_in_state(self, state: str) -> set[str]:
        return {row[0] for row in self._query("SELECT id FROM tasks WHERE state = ?", (state,))}

    def row(self, task_id: str) -> dict[str, Any]:
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=30)) as db:
            db.row_factory = sqlite3.Row
            found = db.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        assert found is not None, f"no task {task_id}"
        return dict(found)

    def wait_states(self, ids: Sequence[str], state: str, timeout: float) -> None:
        """Wait until every task of ``ids`` is in ``state``."""
        poll(
            lambda: self.states(ids)[state] == len(ids),
            timeout,
            f"all {len(ids)} tasks {state} (now {dict(self.states(ids))})",
            interval=0.2,
        )

    def executions(self, kind: str = "started") -> Counter[str]:
        """Per task id, how many runs began (``started``) or succeeded."""
        if not self.executions_path.exists():
            return Counter()
        counts: Counter[str] = Counter()
        for line in self.executions_path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == kind:
                counts[parts[1]] += 1
        return counts

    # -- enqueueing ----------------------------------------------------------

    def http_api(self) -> bool:
        """True when the server answers ``POST /tasks`` (the HTTP API is mounted)."""
        try:
            self._post({"name": "demo.echo", "args": [None]})
        except (AssertionError, urllib.error.URLError, OSError):
            return False
        return True

    def _post(self, body: dict[str, Any]) -> str:
        request = urllib.request.Request(
            f"{self.base_url}/tasks",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 202, response.status
                task_id: str = json.loads(response.read())["id"]
                return task_id
        except urllib.error.HTTPError as error:
            raise AssertionError(
                f"POST /tasks answered {error.code}: {error.read().decode(errors='replace')}\n"
                f"server output:\n{self.output()[-3000:]}"
            ) from None

    def enqueue(
        self, name: str, args_list: Sequence[list[Any]], *, via_http: bool = True, clients: int = 4
    ) -> list[str]:
        """Enqueue one task per args list, in order of the returned ids.

        Over HTTP (``POST /tasks``, ``clients`` requests at a time), or straight
        into the store file, which writes what ``Tasks.enqueue`` would in one
        transaction; the server finds those rows by polling.
        """
        if not via_http:
            return insert_tasks(self.database_url, name, args_list)
        with ThreadPoolExecutor(clients) as pool:
            return list(pool.map(lambda args: self._post({"name": name, "args": args}), args_list))


def insert_tasks(
    database_url: str, name: str, args_list: Sequence[list[Any]], *, max_attempts: int = 3
) -> list[str]:
    """Insert queued tasks into a SQLite task store from outside the server."""
    now = time.time()
    rows = [
        NewTask(
            id=new_id(),
            name=name,
            queue="default",
            args_json=json.dumps(args),
            kwargs_json="{}",
            priority=0,
            max_attempts=max_attempts,
            run_at=now,
            created_at=now,
            idempotency_key=None,
        )
        for args in args_list
    ]

    async def insert() -> None:
        store = SQLiteStore(database_url)
        await store.open()
        try:
            await store.insert(rows)
        finally:
            await store.close()

    asyncio.run(insert())
    return [row.id for row in rows]


@contextlib.contextmanager
def running_server(root: Path, **options: Any) -> Iterator[Server]:
    """A :class:`Server` (not started) that is always killed at the end."""
    server = Server(root, **options)
    try:
        yield server
    finally:
        server.kill()
