"""Wake-ups between engines sharing one SQLite file, and the poll that backs them up.

Two engines in this process stand for two processes: a web engine that only
enqueues (workers off) and a worker engine. Their stores are separate, with
separate wake sockets, exactly as two processes would have. A wake-up is an
optimisation: when it is lost the worker's poll still finds the task, and a
poll that finds work starts polling often again (the pause does not keep
doubling while claims find tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from quart import Quart

from tasks import Tasks
from tasks.store.sqlite import SQLiteStore
from tests.conftest import eventually

POLL_CAP = 2.56
"""The worker's ``TASKS_POLL_INTERVAL``: 0.02 s doubled seven times."""


@contextlib.asynccontextmanager
async def engine(tasks: Tasks) -> AsyncIterator[Tasks]:
    app = Quart(__name__)
    tasks.init_app(app)
    async with app.test_app():
        yield tasks


def _worker(database_url: str, pauses: list[float]) -> Tasks:
    worker = Tasks(database_url=database_url, concurrency=4, poll_interval=POLL_CAP)

    @worker.task(name="probe", max_attempts=1)
    async def probe() -> str:
        dispatcher = worker.runtime.dispatcher
        assert dispatcher is not None
        pauses.append(dispatcher.poll_pause)  # just after the claim that found this task
        return "ran"

    return worker


def _web(database_url: str) -> Tasks:
    web = Tasks(database_url=database_url, workers=False)

    @web.task(name="probe", max_attempts=1)
    async def probe() -> str:
        raise AssertionError("the web engine has no workers")

    return web


def _sockets(worker: Tasks) -> list[Path]:
    store = worker.runtime.store
    assert isinstance(store, SQLiteStore)
    folder = Path(store.wake_directory)
    return list(folder.iterdir()) if folder.exists() else []


async def test_an_enqueue_in_one_engine_wakes_the_idle_worker_of_another(
    database_url: str,
) -> None:
    pauses: list[float] = []
    woken = asyncio.Event()
    async with engine(_worker(database_url, pauses)) as worker, engine(_web(database_url)) as web:
        [own] = _sockets(worker)  # the web engine (no workers) does not listen
        assert own.name.startswith(f"{os.getpid()}-")
        worker.runtime.store.on_new_work(woken.set)
        handle = await web.get_task("probe").enqueue()
        await asyncio.wait_for(woken.wait(), 10)
        assert await handle.result(10) == "ran"


async def test_a_lost_wake_up_is_made_up_by_the_poll_which_then_polls_often_again(
    database_url: str,
) -> None:
    """The worker's socket is removed (as if it stopped listening): no wake-up reaches
    it, yet its poll finds the task; and that poll, finding one task for four free
    slots, brings the pause back to its minimum (it used to stay at the cap)."""
    pauses: list[float] = []
    async with engine(_worker(database_url, pauses)) as worker, engine(_web(database_url)) as web:
        for path in _sockets(worker):
            path.unlink()
        dispatcher = worker.runtime.dispatcher
        assert dispatcher is not None

        async def idle_at_the_cap() -> bool:
            return dispatcher.poll_pause >= POLL_CAP

        await eventually(idle_at_the_cap, timeout=30)
        handle = await web.get_task("probe").enqueue()
        assert await handle.result(3 * POLL_CAP + 10) == "ran"
        assert len(pauses) == 1
        assert pauses[0] <= 0.16, pauses
