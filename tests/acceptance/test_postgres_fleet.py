"""Issue 7: a web process and two standalone workers on one PostgreSQL schema.

The web process (``hypercorn``, ``TASKS_WORKERS=false``) only enqueues: it
receives 2,000 short tasks over ``POST /tasks``. Two ``python -m tasks
worker`` processes run them. One worker is killed with SIGKILL mid-run.
Every task must succeed; a task may run again only after the kill (its first
run was in the killed worker and its lease had to expire), and the survivor
reclaims the killed worker's tasks. Leases are short (2 s, heartbeat 0.5 s).

``served.py`` appends ``started <task id> <pid>`` to one file per run, in
the order the runs began (``O_APPEND``), across every process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from tests.acceptance.conftest import ServerFactory
from tests.acceptance.server import APP, Server, poll
from tests.servers import TasksWorker

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TASKS = 2000
TASK_SECONDS = 0.1
CONCURRENCY = 20


def query(url: str, sql: str, *args: Any) -> list[Any]:
    """Run one query on PostgreSQL from sync code (a thread with its own loop)."""

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


@pytest.fixture
def start_workers() -> Iterator[list[TasksWorker]]:
    """Workers to start; every one is killed at teardown."""
    workers: list[TasksWorker] = []
    yield workers
    for worker in workers:
        worker.kill()


def runs(server: Server) -> list[tuple[str, int]]:
    """(task id, pid) of every run that began, in the order they began."""
    if not server.executions_path.exists():
        return []
    found = []
    for line in server.executions_path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "started":
            found.append((parts[1], int(parts[2])))
    return found


def test_web_and_two_workers_one_killed(
    make_server: ServerFactory, start_workers: list[TasksWorker], postgres_schema_url: str
) -> None:
    url = postgres_schema_url
    web = make_server(env={"TASKS_DATABASE_URL": url, "TASKS_WORKERS": "false"})
    web.start()
    assert "0 workers" in web.output()
    worker_env = {**web.environment(), "TASKS_POOL_SIZE": "4"}
    victim, survivor = (
        TasksWorker(web.root, name, worker_env, app=APP, args=["--concurrency", str(CONCURRENCY)])
        for name in ("victim", "survivor")
    )
    start_workers += [victim, survivor]
    for worker in start_workers:
        worker.start(ready=False)
    for worker in start_workers:
        worker.wait_ready()

    ids: list[str] = []
    enqueue_error: list[BaseException] = []

    def enqueue() -> None:
        try:
            ids.extend(web.enqueue("demo.sleep", [[TASK_SECONDS]] * TASKS, clients=6))
        except BaseException as exc:
            enqueue_error.append(exc)

    sender = threading.Thread(target=enqueue, name="enqueue-over-http")
    sender.start()
    try:
        # Mid-run: the victim has worked for a while and has tasks running right now.
        def victim_busy() -> bool:
            started = [task_id for task_id, pid in runs(web) if pid == victim.pid]
            running = query(url, "SELECT count(*) FROM tasks WHERE state = 'running'")[0][0]
            return len(started) >= 200 and running >= CONCURRENCY

        poll(victim_busy, 60, "the victim busy", interval=0.1)
        victim.kill()
        runs_before_kill = len(runs(web))
    finally:
        sender.join(120)
    assert not enqueue_error, enqueue_error
    assert len(set(ids)) == TASKS

    def all_succeeded() -> bool:
        rows = query(url, "SELECT state, count(*) FROM tasks GROUP BY state")
        return dict((r[0], r[1]) for r in rows) == {"succeeded": TASKS}

    poll(all_succeeded, 90, f"all {TASKS} tasks succeeded", interval=0.5)
    assert survivor.proc is not None
    assert survivor.proc.poll() is None, "the survivor is still running"

    attempts = {r["id"]: r["attempts"] for r in query(url, "SELECT id, attempts FROM tasks")}
    assert set(attempts) == set(ids)
    by_task: dict[str, list[tuple[int, int]]] = defaultdict(list)  # id -> [(order, pid)]
    for order, (task_id, pid) in enumerate(runs(web)):
        by_task[task_id].append((order, pid))
    assert set(by_task) == set(ids), "every task began at least once"

    rerun = {task_id for task_id, seen in by_task.items() if len(seen) > 1}
    for task_id in rerun:
        *earlier, (last_order, last_pid) = by_task[task_id]
        # Before its lease ran out nobody else started it: earlier runs were all
        # in the killed worker, the next one began after the kill, in the survivor.
        assert {pid for _, pid in earlier} == {victim.pid}, by_task[task_id]
        assert last_order >= runs_before_kill, by_task[task_id]
        assert last_pid == survivor.pid, by_task[task_id]

    # demo.sleep never fails, so a second attempt means a reclaim: the tasks the
    # victim held at the kill (running, or claimed and not begun yet). Each was
    # reclaimed once and then ran in the survivor.
    held = {task_id for task_id, n in attempts.items() if n > 1}
    assert held, "the victim held no task when killed"
    assert rerun <= held
    for task_id in held:
        assert attempts[task_id] == 2, (task_id, attempts[task_id])
        assert by_task[task_id][-1][1] == survivor.pid, by_task[task_id]
        assert {pid for _, pid in by_task[task_id][:-1]} <= {victim.pid}, by_task[task_id]
    print(
        f"victim held {len(held)} tasks at the kill, {len(rerun)} of them had begun;"
        f" runs: {len(runs(web))}"
    )
