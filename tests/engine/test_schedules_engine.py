"""Schedules in a running app: slots fired once, pause and resume, over Python and HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from quart import Quart

from tasks import ConfigurationError, ScheduleNotFoundError, State, Tasks, UnknownTaskError
from tasks.compat import CeleryTasks, crontab
from tasks.scheduler import fire_due
from tasks.web import TasksWeb
from tests.conftest import eventually


def make_tasks(url: str) -> Tasks:
    tasks = Tasks(database_url=url)
    runs: list[str] = []

    @tasks.periodic(every=timedelta(seconds=1))
    @tasks.task(name="tick")
    async def tick() -> str:
        runs.append("tick")
        return "tock"

    @tasks.task(name="report")
    async def report(kind: str) -> str:
        return kind

    tasks.schedule(report, cron="0 3 * * *", tz="Europe/Berlin", args=("nightly",), name="night")
    return tasks


@contextlib.asynccontextmanager
async def serving(tasks: Tasks) -> AsyncIterator[Quart]:
    app = Quart(__name__)
    tasks.init_app(app)
    TasksWeb(tasks).init_app(app)
    async with app.test_app():
        yield app


async def test_an_every_second_schedule_fires_each_slot_once(backend_url: str) -> None:
    tasks = make_tasks(backend_url)
    async with serving(tasks):

        async def two_ran() -> bool:
            page = await tasks.list(name="tick", state=State.SUCCEEDED)
            return len(page.tasks) >= 2

        await eventually(two_ran, timeout=15)
        page = await tasks.list(name="tick", limit=100)
        keys = [t.idempotency_key for t in page.tasks]
        assert len(keys) == len(set(keys))
        assert all(key and key.startswith("schedule:tick:") for key in keys)


async def test_firing_the_same_slot_again_or_concurrently_creates_nothing(
    backend_url: str,
) -> None:
    tasks = make_tasks(backend_url)
    async with serving(tasks):
        await tasks.pause_schedule("tick")  # the loop leaves it alone; we fire by hand
        await tasks.resume_schedule("tick")
        rt = tasks.runtime
        now = time.time() + 5  # five slots later than the loop has fired
        created = await asyncio.gather(*(fire_due(rt, tasks.schedules, now) for _ in range(3)))
        assert sum(created) <= 1  # the latest slot only (policy "latest"), once
        assert await fire_due(rt, tasks.schedules, now) == 0


async def test_pause_holds_in_the_store_and_is_shown(backend_url: str) -> None:
    tasks = make_tasks(backend_url)
    async with serving(tasks) as app:
        client = app.test_client()
        paused = await client.post("/tasks/schedules/night/pause")
        assert paused.status_code == 200
        body = await paused.get_json()
        assert (body["paused"], body["next_slot"], body["task"]) == (True, None, "report")
        listing = await (await client.get("/tasks/schedules")).get_json()
        by_name = {s["name"]: s for s in listing["schedules"]}
        assert set(by_name) == {"tick", "night"}
        assert by_name["night"]["paused"] is True
        assert by_name["night"]["cron"] == "0 3 * * *"
        missing = await client.post("/tasks/schedules/nope/pause")
        assert missing.status_code == 404
        assert (await missing.get_json())["error"]["code"] == "schedule_not_found"
    again = make_tasks(backend_url)  # a restart: the pause is still there
    async with serving(again):
        [night] = [v for v in await again.schedule_views() if v.schedule.name == "night"]
        assert night.state is not None
        assert night.state.paused
        with pytest.raises(ScheduleNotFoundError):
            await again.resume_schedule("nope")


def test_a_schedule_of_an_unregistered_task_stops_the_start() -> None:
    tasks = Tasks(database_url="sqlite:///:memory:")
    tasks.schedule("missing.task", every=60, name="ghost")
    with pytest.raises(UnknownTaskError, match="ghost"):
        tasks.schedules.check()


async def test_celery_beat_schedule_ports_as_schedules(backend_url: str) -> None:
    tasks = Tasks(database_url=backend_url)
    celery = CeleryTasks(tasks)

    @celery.task(name="beat.add")
    def add(a: int, b: int) -> int:
        return a + b

    celery.conf.timezone = "Europe/Berlin"
    celery.conf.beat_schedule = {
        "every-30-seconds": {"task": "beat.add", "schedule": 30.0, "args": (16, 16)},
        "monday-morning": {
            "task": "beat.add",
            "schedule": crontab(hour=7, minute=30, day_of_week=1),
            "args": (1, 2),
        },
    }
    by_name = tasks.schedules.by_name
    assert by_name["every-30-seconds"].every == 30.0
    assert (by_name["monday-morning"].cron, by_name["monday-morning"].tz) == (
        "30 7 * * 1",
        "Europe/Berlin",
    )
    with pytest.raises(ConfigurationError, match="schedule must be"):
        celery.conf.beat_schedule = {"bad": {"task": "beat.add", "schedule": "often"}}
