"""One task per slot across real processes, through a kill -9, on both backends.

Hypercorn workers and standalone ``python -m tasks worker`` processes all run
the schedule ``accept.tick`` (every second, missed slots: all). Whichever
fires a slot, its task is inserted once (a unique key per schedule and slot),
and the slots keep firing, none skipped, after the process that fired last is
killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import signal
import sqlite3
import urllib.request
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from tests.acceptance.conftest import ServerFactory
from tests.acceptance.server import Server, poll
from tests.servers import TasksWorker

pytestmark = pytest.mark.slow

PREFIX = "schedule:accept.tick:"
FIRED = re.compile(
    r"schedule accept\.tick fired \d+ slot\(s\), up to (?P<slot>\S+) \(pid (?P<pid>\d+)\)"
)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def workers() -> Iterator[list[TasksWorker]]:
    started: list[TasksWorker] = []
    yield started
    for worker in started:
        worker.kill()


def fired_slots(server: Server, url: str | None) -> list[int]:
    """The slots whose task exists, ascending (read from the keys)."""
    sql = "SELECT idempotency_key FROM tasks WHERE idempotency_key LIKE 'schedule:accept.tick:%'"
    if url is None:
        with sqlite3.connect(server.db_path, timeout=30) as db:
            keys = [row[0] for row in db.execute(sql)]
    else:

        async def read() -> list[str]:
            conn = await asyncpg.connect(url)
            try:
                return [row[0] for row in await conn.fetch(sql)]
            finally:
                await conn.close()

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            keys = pool.submit(asyncio.run, read()).result()
    return sorted(int(key.removeprefix(PREFIX)) for key in keys)


def last_firer(processes: list[Any]) -> int:
    """The pid of the process that logged the latest firing of ``accept.tick``."""
    firings = []
    for process in processes:
        for match in FIRED.finditer(process.output()):
            firings.append((match["slot"], int(match["pid"])))
    assert firings, "no process logged a firing"
    return max(firings)[1]


def test_each_slot_fires_once_across_processes_and_a_kill(
    make_server: ServerFactory, workers: list[TasksWorker], database_url: str | None
) -> None:
    env: dict[str, Any] = {"ACCEPT_TICK_EVERY": "1"}
    if database_url is not None:
        env["TASKS_DATABASE_URL"] = database_url
    web = make_server(workers=3 if database_url is None else 2, env=env)
    web.start()
    for n in range(1 if database_url is None else 2):
        worker = TasksWorker(web.root, name=f"worker{n}", app=web.app, env=web.environment())
        workers.append(worker)
        worker.start()

    def at_least(count: int) -> list[int] | None:
        slots = fired_slots(web, database_url)
        return slots if len(slots) >= count else None

    before = poll(lambda: at_least(4), 30, "4 slots fired", interval=0.2)
    victim = last_firer([web, *workers])
    os.kill(victim, signal.SIGKILL)  # a Hypercorn worker's death stops that server
    slots = poll(lambda: at_least(len(before) + 4), 30, "4 more slots after the kill", interval=0.2)
    assert slots == list(range(slots[0], slots[-1] + 1)), "a slot was skipped"
    assert len(slots) == len(set(slots))


def test_the_reference_app_shows_its_minutely_report_schedule(make_server: ServerFactory) -> None:
    web = make_server(env={"APP_REPORT_SCHEDULE": "* * * * *"})
    web.start()
    with urllib.request.urlopen(f"{web.base_url}/tasks/schedules", timeout=30) as response:
        schedules = {s["name"]: s for s in json.loads(response.read())["schedules"]}
    report = schedules["demo.report"]
    assert (report["task"], report["cron"], report["paused"]) == ("demo.report", "* * * * *", False)
    assert report["next_slot"].endswith(":00Z")
    with urllib.request.urlopen(f"{web.base_url}/tasks/dashboard/queues", timeout=30) as response:
        page = response.read().decode()
    assert 'id="schedules"' in page
    assert 'data-schedule="demo.report"' in page
