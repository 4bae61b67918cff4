"""Issue 17: limits hold across a fleet of real processes sharing one store.

SQLite: ``hypercorn -w 2`` plus one ``python -m tasks worker`` on one file.
PostgreSQL: ``hypercorn -w 2`` plus two standalone workers (two machines'
worth of processes) on one schema. 300 tasks of ``accept.limited``
(``concurrency=3``) are posted over HTTP: the run intervals the tasks log
themselves never overlap more than 3 deep, and do reach 3. 300 tasks of
``accept.rated`` (``rate_limit="20/s"``): their starts as the store records
them (``started_at``) never number more than 20 in any one-second window.
Every task succeeds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from tests.acceptance.conftest import ServerFactory
from tests.acceptance.server import APP, Server, poll
from tests.servers import TasksWorker

pytestmark = [pytest.mark.slow]

TASKS = 300


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fleet(
    request: pytest.FixtureRequest, make_server: ServerFactory
) -> Iterator[tuple[Server, str]]:
    """A started web server (``-w 2``) and standalone workers; its database URL."""
    url = ""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_schema_url")
    env = {"TASKS_LEASE_SECONDS": "10", "TASKS_HEARTBEAT_SECONDS": "2", "ACCEPT_FLOW_TASKS": "1"}
    if url:
        env["TASKS_DATABASE_URL"] = url
    server = make_server(workers=2, env=env)
    url = url or server.database_url
    server.start()
    workers = [
        TasksWorker(
            server.root, f"worker{n}", {**server.environment(), "TASKS_POOL_SIZE": "4"}, app=APP
        )
        for n in range(2 if request.param == "postgres" else 1)
    ]
    try:
        for worker in workers:
            worker.start(ready=False)
        for worker in workers:
            worker.wait_ready()
        yield server, url
    finally:
        for worker in workers:
            worker.kill()


def query(url: str, sql: str) -> list[Any]:
    """Rows of ``sql`` on either backend, from sync code."""
    if url.startswith("sqlite:"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)) as db:
            return db.execute(sql).fetchall()

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def finish_all(server: Server, url: str, name: str, timeout: float) -> list[str]:
    ids = server.enqueue(name, [[]] * TASKS, clients=8)
    assert len(set(ids)) == TASKS

    def done() -> bool:
        rows = query(url, f"SELECT state, COUNT(*) FROM tasks WHERE name = '{name}' GROUP BY state")
        return dict(rows) == {"succeeded": TASKS}

    poll(done, timeout, f"all {TASKS} {name} tasks succeeded", interval=0.5)
    return ids


def logged_runs(server: Server) -> list[tuple[str, int, float, float]]:
    """(task id, pid, begin, end) of every body that ended, from the execution log."""
    found = []
    for line in server.executions_path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "run":
            found.append((parts[1], int(parts[2]), float(parts[3]), float(parts[4])))
    return found


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end before a begin at the same time)."""
    edges = sorted([(b, 1) for b, _ in intervals] + [(e, -1) for _, e in intervals])
    depth = peak = 0
    for _, step in edges:
        depth += step
        peak = max(peak, depth)
    return peak


def test_concurrency_limit_across_the_fleet(fleet: tuple[Server, str]) -> None:
    server, url = fleet
    ids = finish_all(server, url, "accept.limited", 120)
    runs = [run for run in logged_runs(server) if run[0] in set(ids)]
    assert len(runs) == TASKS  # each ran once
    assert max_overlap([(begin, end) for _, _, begin, end in runs]) == 3
    assert len({pid for _, pid, _, _ in runs}) >= 2, "the work was shared by several processes"


def test_rate_limit_across_the_fleet(fleet: tuple[Server, str]) -> None:
    server, url = fleet
    finish_all(server, url, "accept.rated", 120)
    starts = sorted(
        row[0] for row in query(url, "SELECT started_at FROM tasks WHERE name = 'accept.rated'")
    )
    assert len(starts) == TASKS
    for i, start in enumerate(starts):
        in_window = sum(1 for s in starts[i : i + 21] if s < start + 1.0)
        assert in_window <= 20, f"{in_window} starts within one second from {start}"
    assert starts[-1] - starts[0] >= (TASKS / 20) - 1.0 - 0.05
