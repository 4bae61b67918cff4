"""The acceptance suite's Hypercorn server: :class:`tests.servers.Hypercorn` on a SQLite file.

:class:`Server` serves ``served.py`` with short leases and an execution log,
and reads the task store from outside. Starting, signalling and killing the
process group is :mod:`tests.servers`' job (``APP``, ``ROOT`` and ``poll`` are
re-exported from there for the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.model import NewTask, new_id
from tasks.store.sqlite import SQLiteStore
from tests.servers import ROOT, Hypercorn, poll

__all__ = ["APP", "ROOT", "Server", "insert_tasks", "poll"]

APP = "tests.acceptance.served:app"


@dataclass(eq=False)
class Server(Hypercorn):
    """One Hypercorn server (master and workers) on a tmp SQLite file."""

    app: str = APP
    reload: bool = False
    graceful_timeout: int = 5
    ready_log: str | None = "tasks started"

    @property
    def db_path(self) -> Path:
        """The task database shared by every worker and restart."""
        return self.root / "tasks.sqlite3"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def executions_path(self) -> Path:
        """One ``started``/``succeeded`` line per task run (see ``served.py``)."""
        return self.root / "executions.log"

    def options(self) -> list[str]:
        options = ["-w", str(self.workers), "--graceful-timeout", str(self.graceful_timeout)]
        return [*options, *(["--reload"] if self.reload else []), *self.args]

    def environment(self) -> dict[str, str]:
        return {
            **super().environment(),
            "TASKS_DATABASE_URL": self.database_url,
            "TASKS_LEASE_SECONDS": "2",
            "TASKS_HEARTBEAT_SECONDS": "0.5",
            "TASKS_POLL_INTERVAL": "0.2",
            "TASKS_SHUTDOWN_TIMEOUT": "5",
            "TASKS_PROCESSES": "1",
            "ACCEPT_EXECUTION_LOG": str(self.executions_path),
            "APP_INSTANCE_PATH": str(self.root / "instance"),
            "SIDE_SERVER_ENABLED": "false",
            **self.env,
        }

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
    database_url: str,
    name: str,
    args_list: Sequence[list[Any]],
    *,
    max_attempts: int = 3,
    run_at: float | None = None,
) -> list[str]:
    """Insert queued tasks (due at ``run_at``, default now) into a SQLite task store from
    outside the server."""
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
            run_at=now if run_at is None else run_at,
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
