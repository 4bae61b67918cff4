"""Issue 18: a chord of 200 steps over a fleet of real processes survives ``kill -9``.

SQLite: ``hypercorn -w 2`` plus one ``python -m tasks worker`` on one file;
PostgreSQL: ``hypercorn -w 2`` plus two standalone workers on one schema.
A chord of 200 ``accept.part`` steps and one ``accept.total`` is enqueued
(``POST /accept/chord/200``, see ``served.py``). Mid-run a standalone worker
that has run parts is killed with SIGKILL and a new one is started. Every
part ends succeeded, and the final step runs exactly once, with all 200
results in order.
"""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import Iterator

import pytest

from tests.acceptance.conftest import ServerFactory
from tests.acceptance.server import APP, Server, poll
from tests.acceptance.test_limits_fleet import query
from tests.servers import TasksWorker

pytestmark = [pytest.mark.slow]

SIZE = 200


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fleet(
    request: pytest.FixtureRequest, make_server: ServerFactory
) -> Iterator[tuple[Server, str, list[TasksWorker]]]:
    """A started web server (``-w 2``), its standalone workers (killed at teardown), its URL."""
    url = ""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_schema_url")
    env = {
        "TASKS_LEASE_SECONDS": "30",  # recovery must come from liveness, not the lease
        "TASKS_HEARTBEAT_SECONDS": "2",
        "TASKS_CONCURRENCY": "4",
        "ACCEPT_WORKFLOW_TASKS": "1",
    }
    if url:
        env["TASKS_DATABASE_URL"] = url
    server = make_server(workers=2, env=env)
    url = url or server.database_url
    server.start()
    workers: list[TasksWorker] = []
    try:
        for n in range(2 if request.param == "postgres" else 1):
            workers.append(start_worker(server, f"worker{n}"))
        yield server, url, workers
    finally:
        for worker in workers:
            worker.kill()


def start_worker(server: Server, name: str) -> TasksWorker:
    worker = TasksWorker(server.root, name, server.environment(), app=APP)
    worker.start()
    return worker


def logged(server: Server) -> list[str]:
    """The execution log's lines so far (none before the first task wrote one)."""
    path = server.executions_path
    return path.read_text().splitlines() if path.exists() else []


def part_counts(url: str) -> dict[str, int]:
    rows = query(url, "SELECT state, COUNT(*) FROM tasks WHERE name = 'accept.part' GROUP BY state")
    return {state: count for state, count in rows}


def test_a_chord_of_200_survives_kill_9_and_ends_once(
    fleet: tuple[Server, str, list[TasksWorker]],
) -> None:
    server, url, workers = fleet
    request = urllib.request.Request(f"{server.base_url}/accept/chord/{SIZE}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        started = json.loads(response.read())
    final = started["final"]

    victim = workers[0]
    victim_pid = victim.pid

    def victim_ran_parts() -> bool:
        return any(
            line.endswith(f" {victim_pid}") and line.startswith("succeeded ")
            for line in logged(server)
        )

    poll(victim_ran_parts, 60, "the standalone worker to finish some parts", interval=0.05)
    assert part_counts(url).get("succeeded", 0) < SIZE, "the kill came too late to matter"
    victim.signal(signal.SIGKILL)
    victim.wait_exit(10)
    workers.append(start_worker(server, "restarted"))

    def final_done() -> bool:
        rows = query(url, f"SELECT state FROM tasks WHERE id = '{final}'")
        return bool(rows) and rows[0][0] in ("succeeded", "failed", "cancelled")

    poll(final_done, 120, "the chord's final step to end", interval=0.25)
    [(state, result)] = query(url, f"SELECT state, result FROM tasks WHERE id = '{final}'")
    assert state == "succeeded"
    assert json.loads(result) == sum(range(SIZE))
    assert part_counts(url) == {"succeeded": SIZE}
    totals = [line.split() for line in logged(server) if line.startswith("total ")]
    assert [(t[1], int(t[3]), int(t[4])) for t in totals] == [(final, SIZE, sum(range(SIZE)))]
    assert server.executions("started")[final] == 1
