"""Leases and heartbeats in one process; a second connection plays "another process"."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from tasks import TaskEvent, Tasks
from tasks.model import State
from tasks.store.batching import WriteRequest
from tasks.store.sqlite import SQLiteStore
from tests.conftest import eventually


@contextlib.asynccontextmanager
async def serving(tasks: Tasks) -> AsyncIterator[None]:
    app = Quart(__name__)
    tasks.init_app(app)
    async with app.test_app():
        yield


def _long_task(tasks: Tasks) -> tuple[asyncio.Event, asyncio.Event]:
    started, stopped = asyncio.Event(), asyncio.Event()

    @tasks.task(name="long", max_attempts=1)
    async def long() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.set()
            raise

    return started, stopped


async def test_a_task_cancelled_by_another_process_is_stopped_on_the_next_beat(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.sqlite3'}"
    tasks = Tasks(database_url=url, lease_seconds=2, heartbeat_seconds=0.1)
    started, stopped = _long_task(tasks)
    async with serving(tasks):
        handle = await tasks.enqueue("long")
        await asyncio.wait_for(started.wait(), 10)
        other = SQLiteStore(url)
        await other.open()
        try:
            assert (await other.cancel(handle.id)) is not None
        finally:
            await other.close()
        await asyncio.wait_for(stopped.wait(), 10)
        await eventually(lambda: _confirmed(tasks, handle.id))


async def _confirmed(tasks: Tasks, task_id: str) -> bool:
    """The owner confirmed the cancel once the body had stopped."""
    return (await tasks.get(task_id)).state == State.CANCELLED


async def test_a_task_reassigned_to_another_owner_is_stopped_and_left_to_it(
    tmp_path: Path,
) -> None:
    db = tmp_path / "tasks.sqlite3"
    tasks = Tasks(database_url=f"sqlite:///{db}", lease_seconds=2, heartbeat_seconds=0.1)
    started, stopped = _long_task(tasks)
    async with serving(tasks):
        handle = await tasks.enqueue("long")
        await asyncio.wait_for(started.wait(), 10)
        with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn, conn:
            conn.execute("UPDATE tasks SET lease_owner = 'elsewhere' WHERE id = ?", (handle.id,))
        await asyncio.wait_for(stopped.wait(), 10)
        record = await tasks.get(handle.id)
        assert record.state == State.RUNNING
        assert record.lease_owner == "elsewhere"  # our stopped run wrote nothing


async def test_heartbeats_keep_a_task_longer_than_its_lease_from_being_reclaimed(
    tmp_path: Path,
) -> None:
    tasks = Tasks(
        database_url=f"sqlite:///{tmp_path / 'tasks.sqlite3'}",
        lease_seconds=0.5,
        heartbeat_seconds=0.1,
    )
    runs: list[str] = []

    @tasks.task(name="outlives_lease")
    async def outlives_lease() -> str:
        runs.append("run")
        await asyncio.sleep(2)  # four lease periods
        return "done"

    async with serving(tasks):
        handle = await outlives_lease.enqueue()
        record = await tasks.wait(handle.id, timeout=20)
    assert record.state == State.SUCCEEDED
    assert record.attempts == 1
    assert runs == ["run"]


async def test_tasks_finishing_during_a_heartbeat_are_not_taken_for_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A renewal that misses a task whose outcome was just committed must not stop it."""
    tasks = Tasks(
        database_url=f"sqlite:///{tmp_path / 'tasks.sqlite3'}",
        lease_seconds=2,
        heartbeat_seconds=0.01,
        concurrency=50,
    )
    succeeded: list[str] = []

    def count(event: TaskEvent) -> None:
        if event.kind == "succeeded":
            succeeded.append(event.task_id)

    @tasks.task(name="quick")
    async def quick() -> None:
        await asyncio.sleep(0.005)

    tasks.add_listener(count)
    caplog.set_level(logging.WARNING, logger="tasks")
    async with serving(tasks):
        handles = await tasks.enqueue_many([quick.call() for _ in range(2000)])

        async def all_succeeded() -> bool:
            counts = await tasks.runtime.store.count_by_state()
            return counts[State.SUCCEEDED] == len(handles)

        await eventually(all_succeeded, timeout=60)
        await eventually(lambda: _true_when(len(succeeded) == len(handles)), timeout=10)
    assert "was cancelled or reassigned" not in caplog.text


async def _true_when(condition: bool) -> bool:
    return condition


async def test_a_claim_in_flight_when_the_drain_starts_is_released_not_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim's transaction waits at a gate until the drain has cancelled the claimer."""
    db = tmp_path / "tasks.sqlite3"
    tasks = Tasks(database_url=f"sqlite:///{db}", poll_interval=0.1)

    @tasks.task(name="never_started", max_attempts=1)
    async def never_started() -> None:
        raise AssertionError("must not run")

    armed, waiting, gate = False, asyncio.Event(), asyncio.Event()
    real_run_batch = SQLiteStore._run_batch

    async def gated_run_batch(self: SQLiteStore, batch: Sequence[WriteRequest]) -> list[Any]:
        if armed and any(request.kind == "claim" for request in batch):
            waiting.set()
            await gate.wait()
        return await real_run_batch(self, batch)

    monkeypatch.setattr(SQLiteStore, "_run_batch", gated_run_batch)
    async with serving(tasks):
        dispatcher = tasks.runtime.dispatcher
        assert dispatcher is not None
        handle = await never_started.options(delay=0.5).enqueue()
        due = (await tasks.get(handle.id)).run_at
        armed = True
        await asyncio.wait_for(waiting.wait(), 10)  # a claim waits at the gate
        stopping = asyncio.create_task(tasks.shutdown())
        claimer = dispatcher._claimer
        assert claimer is not None
        await eventually(lambda: _true_when(claimer.done() and time.time() > due))
        gate.set()  # the claim commits now, after its claimer was cancelled, and gets the task
        await asyncio.wait_for(stopping, 30)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT state, attempts, lease_owner FROM tasks WHERE id = ?", (handle.id,)
        ).fetchone()
    assert row == ("queued", 0, None)
