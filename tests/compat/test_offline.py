"""Enqueue outside a served app (``tasks.running()``): a real ``quart`` CLI, then Hypercorn."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart

from tasks import NotAcceptingError, State, Tasks
from tasks.compat import TaskQueue
from tests.servers import ROOT, Hypercorn, poll, serving


def _quart(database: Path, *args: str) -> list[str]:
    """Run ``quart --app tests.compat.cli_app:app ARGS``; the task ids it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKS_")}
    env["TASKS_DATABASE_URL"] = f"sqlite:///{database}"
    done = subprocess.run(
        [sys.executable, "-m", "quart", "--app", "tests.compat.cli_app:app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.mark.slow
def test_cli_commands_enqueue_and_the_served_app_runs_the_tasks(tmp_path: Path) -> None:
    database = tmp_path / "tasks.sqlite3"
    records = _quart(database, "enqueue", "3")
    [later] = _quart(database, "aenqueue")
    assert len(records) == 4
    with contextlib.closing(sqlite3.connect(database)) as conn:
        states = dict(conn.execute("SELECT id, state FROM tasks").fetchall())
    assert states == dict.fromkeys([*records, later], "queued")  # enqueue-only: none ran

    server = Hypercorn(
        tmp_path,
        env={"TASKS_DATABASE_URL": f"sqlite:///{database}"},
        app="tests.compat.cli_app:app",
        ready_path="/health",
    )
    with serving(server):

        def finished(task_id: str) -> Any:
            body = httpx.get(f"{server.base_url}/task/{task_id}").json()
            return body if body["state"] == "succeeded" else None

        results = [
            poll(lambda t=t: finished(t), 60, f"task {t}", ignore=httpx.TransportError)["result"]
            for t in [*records, later]
        ]
    assert results == [{"saved": "record-0"}, {"saved": "record-1"}, {"saved": "record-2"}, 5, 9]


async def test_enqueue_outside_running_names_the_way_out(database_url: str) -> None:
    tasks = Tasks(database_url=database_url)
    tq = TaskQueue(tasks)

    @tq.handler
    def handle(item: str) -> None: ...

    app = Quart(__name__)
    tasks.init_app(app)
    tq.init_app(app)
    with pytest.raises(NotAcceptingError, match=r"with tasks\.running\(\)"):
        await tq.aput("x")
    async with tasks.running() as running:
        assert running is tasks
        handle_ = await tq.aput("x")
        async with tasks.running():  # nested, or inside a served app: changes nothing
            assert tasks.accepting
        assert tasks.accepting
    assert not tasks.accepting
    async with app.test_app():
        record = await tasks.wait(handle_.id, timeout=30)
    assert record.state == State.SUCCEEDED
