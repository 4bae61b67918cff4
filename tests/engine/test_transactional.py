"""Transactional enqueue: the caller's write and its task commit or roll back together."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiosqlite
import pytest
from quart import Quart

from tasks import State
from tasks.store.sqlite import sqlite_path
from tests.engine import sample_app
from tests.engine.sample_app import tasks


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Quart]:
    app = sample_app.create_app(database_url)
    async with app.test_app():
        yield app


async def _connect(database_url: str) -> aiosqlite.Connection:
    db = await aiosqlite.connect(sqlite_path(database_url), isolation_level=None)
    await db.execute("CREATE TABLE IF NOT EXISTS notes (body TEXT NOT NULL)")
    return db


async def test_rolled_back_transaction_leaves_neither(app: Quart, database_url: str) -> None:
    db = await _connect(database_url)
    try:
        await db.execute("BEGIN IMMEDIATE")
        await db.execute("INSERT INTO notes VALUES ('lost')")
        [handle] = await tasks.enqueue_in(db, sample_app.add.call(1, 2))
        await db.execute("ROLLBACK")
        rows = list(await db.execute_fetchall("SELECT body FROM notes"))
    finally:
        await db.close()
    assert rows == []
    assert await tasks.store.get(handle.id) is None


async def test_committed_transaction_keeps_both_and_runs(app: Quart, database_url: str) -> None:
    db = await _connect(database_url)
    try:
        await db.execute("BEGIN IMMEDIATE")
        await db.execute("INSERT INTO notes VALUES ('kept')")
        [handle] = await tasks.enqueue_in(db, sample_app.add.call(1, 2))
        await db.execute("COMMIT")
        rows = list(await db.execute_fetchall("SELECT body FROM notes"))
    finally:
        await db.close()
    assert rows == [("kept",)]
    record = await handle.wait(10)
    assert (record.state, record.result) == (State.SUCCEEDED, 3)
