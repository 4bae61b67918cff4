"""``workers``: the registry as a table and as JSON, on a real SQLite file and PostgreSQL.

The test process registers two owners through the store API, as worker
processes do; one of them then dies (its store closes without unregistering,
so its lock file or advisory-lock session goes and its row stays).
"""

from __future__ import annotations

import time

import pytest

from tasks.store import Store
from tasks.store.fleet import WorkerInfo
from tests.cli.conftest import run_cli
from tests.store.conftest import make_store
from tests.store.contract import add, claim_one

pytestmark = pytest.mark.slow  # each test runs `python -m tasks` subprocesses


async def test_workers_lists_alive_and_lost_processes(seeded: Store) -> None:
    url = seeded.url
    started = time.time() - 60
    await seeded.register_worker(
        WorkerInfo("h1:10:aa", "h1", 10, "9.9", ("default", "mail"), 4, started)
    )
    dying = make_store(url)
    await dying.open()
    await dying.register_worker(WorkerInfo("h2:20:bb", "h2", 20, "9.9", ("default",), 2, started))
    running = await add(seeded, 2)
    await claim_one(seeded, "h1:10:aa")
    await claim_one(seeded, "h2:20:bb")
    await dying.close()

    listed = run_cli("workers", "--json", url=url).json()
    assert [w["id"] for w in listed] == ["h1:10:aa", "h2:20:bb"]
    alive, lost = listed
    assert alive == {
        "id": "h1:10:aa",
        "host": "h1",
        "pid": 10,
        "version": "9.9",
        "queues": ["default", "mail"],
        "concurrency": 4,
        "started_at": alive["started_at"],
        "heartbeat_at": alive["heartbeat_at"],
        "running": [running[0]],
        "status": "alive",
    }
    assert alive["started_at"].endswith("Z")
    assert alive["heartbeat_at"] > alive["started_at"]
    assert (lost["status"], lost["running"]) == ("lost", [running[1]])

    table = run_cli("workers", url=url)
    assert table.code == 0, table.err
    header, *lines = table.out.splitlines()
    assert header.split()[:6] == ["ID", "STATUS", "PID", "QUEUES", "CONC", "RUNNING"]
    assert lines[0].split()[:6] == ["h1:10:aa", "alive", "10", "default,mail", "4", "1"]
    assert lines[1].split()[:2] == ["h2:20:bb", "lost"]

    await seeded.unregister_worker("h1:10:aa")
    assert [w["id"] for w in run_cli("workers", "--json", url=url).json()] == ["h2:20:bb"]


def test_workers_on_an_empty_registry_prints_only_the_header(tmp_path: object) -> None:
    import asyncio

    url = f"sqlite:///{tmp_path}/tasks.sqlite3"

    async def create() -> None:
        store = make_store(url)
        await store.open()
        await store.close()

    asyncio.run(create())
    assert run_cli("workers", "--json", url=url).json() == []
    assert run_cli("workers", url=url).out.split() == [
        "ID", "STATUS", "PID", "QUEUES", "CONC", "RUNNING", "HEARTBEAT", "STARTED", "VERSION"
    ]  # fmt: skip
