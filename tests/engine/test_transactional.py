"""Transactional enqueue: the caller's write and its task commit or roll back together.

Runs on each backend with the caller's own connection to the same database:
an aiosqlite connection on the same file, or an asyncpg connection to the
same PostgreSQL schema.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiosqlite
import asyncpg
import pytest
from quart import Quart

from tasks import State
from tasks.store.sqlite import sqlite_path
from tests.engine import sample_app
from tests.engine.sample_app import tasks


@pytest.fixture
async def app(backend_url: str) -> AsyncIterator[Quart]:
    app = sample_app.create_app(backend_url)
    async with app.test_app():
        yield app


class Caller:
    """The application's own connection, with the few statements the tests need."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection: Any = None

    async def open(self) -> None:
        if self.url.startswith("sqlite:"):
            self.connection = await aiosqlite.connect(sqlite_path(self.url), isolation_level=None)
        else:
            self.connection = await asyncpg.connect(self.url)
        await self.connection.execute("CREATE TABLE IF NOT EXISTS notes (body TEXT NOT NULL)")

    async def run(self, sql: str) -> None:
        await self.connection.execute(sql)

    async def begin(self) -> None:
        await self.run("BEGIN IMMEDIATE" if self.url.startswith("sqlite:") else "BEGIN")

    async def notes(self) -> list[str]:
        if self.url.startswith("sqlite:"):
            rows = await self.connection.execute_fetchall("SELECT body FROM notes")
        else:
            rows = await self.connection.fetch("SELECT body FROM notes")
        return [row[0] for row in rows]

    async def close(self) -> None:
        await self.connection.close()


@pytest.fixture
async def caller(app: Quart, backend_url: str) -> AsyncIterator[Caller]:
    caller = Caller(backend_url)
    await caller.open()
    try:
        yield caller
    finally:
        await caller.close()


async def test_rolled_back_transaction_leaves_neither(caller: Caller) -> None:
    await caller.begin()
    await caller.run("INSERT INTO notes VALUES ('lost')")
    [handle] = await tasks.enqueue_in(caller.connection, sample_app.add.call(1, 2))
    await caller.run("ROLLBACK")
    assert await caller.notes() == []
    assert await tasks.store.get(handle.id) is None


async def test_committed_transaction_keeps_both_and_runs(caller: Caller) -> None:
    await caller.begin()
    await caller.run("INSERT INTO notes VALUES ('kept')")
    [handle] = await tasks.enqueue_in(caller.connection, sample_app.add.call(1, 2))
    await caller.run("COMMIT")
    assert await caller.notes() == ["kept"]
    record = await handle.wait(10)
    assert (record.state, record.result) == (State.SUCCEEDED, 3)


async def test_started_at_is_after_the_callers_commit(caller: Caller) -> None:
    """The claim waits for the caller's write lock (SQLite); it is stamped when it runs."""
    await caller.begin()
    [handle] = await tasks.enqueue_in(caller.connection, sample_app.add.call(2, 3))
    await asyncio.sleep(0.5)  # the caller's transaction stays open a while (the fault)
    await caller.run("COMMIT")
    committed = time.time()
    record = await handle.wait(10)
    assert record.state == State.SUCCEEDED
    assert record.started_at is not None
    assert record.started_at >= committed - 0.01
