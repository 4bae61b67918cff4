"""Issue 20.2 and 19.1: a dead worker's tasks are recovered without waiting for its lease,
a live but blocked one keeps its tasks, and the registry shows who is alive or lost.

Real processes (``hypercorn -w 3`` on SQLite, ``python -m tasks worker`` on
both backends); the store and the CLI are read from outside. Leases are long
(60 s) where a test shows that recovery did not wait for them: every bounded
wait here ends well before a lease could have expired.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tasks.model import NewTask, TaskRecord, new_id
from tests.acceptance.conftest import ServerFactory
from tests.acceptance.server import APP, poll
from tests.cli.conftest import run_cli
from tests.servers import TasksWorker
from tests.store.conftest import make_store

pytestmark = pytest.mark.slow

LONG_LEASE = {"TASKS_LEASE_SECONDS": "60", "TASKS_HEARTBEAT_SECONDS": "5"}
RECOVERY_BOUND = 20.0
"""Seconds a recovery may take here: a third of the lease (the target is about one)."""


def _sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync test code (a thread with its own loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def insert(url: str, name: str, args_list: Sequence[list[Any]]) -> list[str]:
    """Insert queued tasks into the store at ``url`` from outside the servers."""
    now = time.time()
    rows = [
        NewTask(new_id(), name, "default", json.dumps(a), "{}", 0, 3, now, now, None)
        for a in args_list
    ]

    async def run() -> None:
        store = make_store(url)
        await store.open()
        try:
            await store.insert(rows)
        finally:
            await store.close()

    _sync(run())
    return [row.id for row in rows]


def records(url: str, ids: Sequence[str]) -> list[TaskRecord]:
    """The tasks, read through a store of their backend."""

    async def run() -> list[TaskRecord]:
        store = make_store(url)
        await store.open()
        try:
            return await store.get_many(ids)
        finally:
            await store.close()

    result: list[TaskRecord] = _sync(run())
    return result


def registry(url: str) -> dict[int, dict[str, Any]]:
    """``python -m tasks workers --json``, by pid."""
    ran = run_cli("workers", "--json", url=url)
    return {w["pid"]: w for w in ran.json()}


def test_kill_9_of_one_of_three_hypercorn_workers_is_recovered_without_its_lease(
    make_server: ServerFactory,
) -> None:
    # The master stops the other two workers when one dies; they drain for up to
    # 15 s, and meanwhile (not after a 60 s lease) requeue the dead one's tasks.
    # 4 slots a worker for 12 tasks: every worker must take some (with the default
    # 10, one worker could take 10 and another the last 2, leaving the third idle).
    env = {**LONG_LEASE, "TASKS_SHUTDOWN_TIMEOUT": "15", "TASKS_CONCURRENCY": "4"}
    server = make_server(workers=3, env=env)
    server.start()
    pids = server.worker_pids()
    assert len(pids) == 3
    ids = server.enqueue("demo.sleep", [[120]] * 12)
    victim = pids[0]

    def owners() -> dict[str, str]:
        rows = server._query("SELECT id, lease_owner FROM tasks WHERE state = 'running'")
        return {task_id: owner for task_id, owner in rows}

    poll(
        lambda: {int(o.split(":")[1]) for o in owners().values()} == set(pids),
        30,
        "tasks running in all three workers",
    )
    held = {t for t, o in owners().items() if int(o.split(":")[1]) == victim}
    assert held
    alive = registry(server.database_url)
    assert {pid: w["status"] for pid, w in alive.items()} == dict.fromkeys(pids, "alive")
    assert set(alive[victim]["running"]) == held

    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)

    def recovered() -> bool:
        rows = {r.id: r for r in records(server.database_url, sorted(held))}
        return all(r.lease_owner is None and r.state.value == "queued" for r in rows.values())

    poll(recovered, RECOVERY_BOUND, "the killed worker's tasks requeued", interval=0.1)
    assert time.monotonic() - killed_at < 60  # never the lease
    server.wait_exit(60)
    server.wait_group_gone(30)
    assert "worker processes gone" in server.output()
    for record in records(server.database_url, ids):
        assert record.attempts <= 1  # nothing ran twice: the survivors drained theirs
    # The killed one is shown lost; the two that stopped cleanly are gone from the registry.
    after = registry(server.database_url)
    assert set(after) == {victim}
    assert after[victim]["status"] == "lost"
    assert after[victim]["running"] == []


@pytest.mark.postgres
def test_kill_9_of_a_standalone_postgres_worker_is_recovered_without_its_lease(
    make_server: ServerFactory, standalone_workers: list[TasksWorker], postgres_schema_url: str
) -> None:
    url = postgres_schema_url
    env = {**make_server().environment(), "TASKS_DATABASE_URL": url, **LONG_LEASE}
    root = make_server().root
    victim, survivor = (
        TasksWorker(root, name, env, app=APP, args=["--concurrency", "2"])
        for name in ("victim", "survivor")
    )
    workers = standalone_workers
    workers += [victim, survivor]
    for worker in workers:
        worker.start()
    ids = insert(url, "demo.sleep", [[120]] * 4)

    def running() -> dict[str, str]:
        return {r.id: str(r.lease_owner) for r in records(url, ids) if r.state.value == "running"}

    poll(lambda: len(running()) == 4, 30, "four tasks running in the two workers")
    held = {t for t, o in running().items() if int(o.split(":")[1]) == victim.pid}
    assert len(held) == 2
    killed_at = time.monotonic()
    victim.kill()

    def recovered() -> bool:
        rows = records(url, sorted(held))
        return all(r.lease_owner is None and r.state.value == "queued" for r in rows)

    poll(recovered, RECOVERY_BOUND, "the killed worker's tasks requeued", interval=0.1)
    assert time.monotonic() - killed_at < 60
    assert "worker processes gone" in survivor.output()
    after = registry(url)
    assert after[victim.pid]["status"] == "lost"
    assert after[survivor.pid]["status"] == "alive"
    assert len(after[survivor.pid]["running"]) == 2

    survivor.stop(signal.SIGTERM, 60)
    assert set(registry(url)) == {victim.pid}  # a clean stop leaves the registry


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_worker_whose_loop_is_blocked_past_its_lease_keeps_its_task(
    backend: str,
    make_server: ServerFactory,
    standalone_workers: list[TasksWorker],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Two workers, 1 s leases; one task blocks its worker's event loop for 5 s (no
    heartbeat meanwhile). The idle worker would reclaim and rerun it if it went by the
    lease alone; its owner's liveness mark says it lives, so it runs once."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'tasks.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_schema_url")
    server = make_server()
    env = {
        **server.environment(),
        "TASKS_DATABASE_URL": url,
        "TASKS_LEASE_SECONDS": "1",
        "TASKS_HEARTBEAT_SECONDS": "0.3",
    }
    workers = standalone_workers
    workers += [TasksWorker(server.root, f"w{n}", env, app=APP) for n in (1, 2)]
    for worker in workers:
        worker.start()
    [task_id] = insert(url, "accept.block_loop", [[5]])

    def finished() -> TaskRecord | None:
        [record] = records(url, [task_id])
        return record if record.state.value in ("succeeded", "failed") else None

    record = poll(finished, 60, "the blocking task finished", interval=0.2)
    assert record.state.value == "succeeded"
    assert record.attempts == 1
    assert server.executions("started")[task_id] == 1
    for worker in workers:
        assert "worker processes gone" not in worker.output()
