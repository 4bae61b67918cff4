"""Retention: finished tasks older than ``TASKS_RESULT_TTL`` go; recent and unfinished stay."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import pytest
from quart import Quart

from tasks import Tasks
from tasks.retention import BATCH, purge_once
from tests.acceptance.conftest import ServerFactory
from tests.acceptance.server import insert_tasks, poll


def _age(db: Path, seconds: float, ids: list[str]) -> None:
    """Pretend these tasks finished ``seconds`` ago."""
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.executemany(
            "UPDATE tasks SET finished_at = ? WHERE id = ?",
            [(time.time() - seconds, task_id) for task_id in ids],
        )


async def test_purge_removes_old_finished_tasks_in_batches_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    db = tmp_path / "tasks.sqlite3"
    tasks = Tasks(database_url=f"sqlite:///{db}", result_ttl=3600, workers=False)

    @tasks.task(name="noop")
    async def noop() -> None:
        return None

    app = Quart(__name__)
    tasks.init_app(app)
    async with app.test_app():
        handles = await tasks.enqueue_many([noop.call() for _ in range(BATCH * 2 + 10)])
        ids = [h.id for h in handles]
        old, recent, unfinished = ids[: BATCH * 2 + 5], ids[-5:-1], ids[-1]
        with contextlib.closing(sqlite3.connect(db)) as conn, conn:
            conn.execute(
                "UPDATE tasks SET state = 'succeeded', finished_at = ? WHERE id != ?",
                (time.time(), unfinished),
            )
        _age(db, 7200, old)

        assert await purge_once(tasks.runtime) == len(old)
        remaining = {r.id for r in (await tasks.list(limit=1000)).tasks}
        assert remaining == {*recent, unfinished}
        assert await purge_once(tasks.runtime) == 0


@pytest.mark.slow
def test_server_purges_expired_results_in_the_background(make_server: ServerFactory) -> None:
    server = make_server(env={"TASKS_RESULT_TTL": "1"})
    server.start()
    done = server.enqueue("demo.echo", [[n] for n in range(20)])
    [running] = server.enqueue("demo.sleep", [[600]])
    now = time.time()
    # Due in an hour from the start: inserted due now and delayed after, it could
    # run in between (an outside insert wakes the server at once).
    [later] = insert_tasks(server.database_url, "demo.echo", [[0]], run_at=now + 3600)

    poll(lambda: not (set(done) & {r[0] for r in _ids(server.db_path)}), 60, "results purged")
    states = dict(_ids(server.db_path))
    assert states[running] == "running"
    assert states[later] == "queued"
    assert "retention removed" in server.output()


def _ids(db: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return conn.execute("SELECT id, state FROM tasks").fetchall()
