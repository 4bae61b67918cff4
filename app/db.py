"""The reference app's own SQLite database: records, outbox, users and uploads.

It is a separate file from the task store (see docs/tour.md, "Where the
app's data lives"). One long-lived aiosqlite connection per process, opened
on first use (a task claimed at startup may need it before the app's own
``before_serving`` hooks ran) and closed after the task system has drained.
Each statement commits on its own; writes that must not repeat are keyed by
task id and use ``ON CONFLICT ... DO NOTHING``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite
from quart import Quart, current_app

from app.lifecycle import close_when_serving_ends
from app.migrations import Schema, migrate
from app.statements import immediate

SCHEMA = Schema(
    "the app database",
    (
        (
            """CREATE TABLE records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            task_id TEXT NOT NULL UNIQUE,
            data TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        ),
        (
            """CREATE TABLE users (
            email TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
            """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            task_id TEXT NOT NULL UNIQUE,
            sender TEXT NOT NULL,
            recipient TEXT NOT NULL,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        ),
        (
            """CREATE TABLE uploads (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            task_id TEXT NOT NULL,
            received_at REAL NOT NULL
        )""",
        ),
    ),
    # The runner before app/migrations.py kept the version here; a file it
    # migrated is adopted at that version.
    legacy_version="PRAGMA user_version",
    hint="upgrade the app or point APP_DATABASE_PATH elsewhere",
)
"""The app file's steps (see :mod:`app.migrations`): append new ones, never edit a shipped one."""


class AppDatabase:
    """The app's SQLite file behind one lazily opened, migrated connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def connection(self) -> aiosqlite.Connection:
        """The open connection; the first call opens the file and migrates it."""
        if self._connection is None:
            async with self._lock:
                if self._connection is None:
                    self._connection = await self._open()
        return self._connection

    async def _open(self) -> aiosqlite.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            connection.row_factory = aiosqlite.Row
            await connection.execute("PRAGMA busy_timeout = 10000")
            await connection.execute("PRAGMA journal_mode = WAL")
            await migrate(SCHEMA, immediate(connection))
        except BaseException:
            await connection.close()
            raise
        return connection

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement (its own transaction); returns the rows it changed."""
        connection = await self.connection()
        cursor = await connection.execute(sql, params)
        await cursor.close()
        return cursor.rowcount

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one INSERT (its own transaction); returns the new row's id."""
        connection = await self.connection()
        cursor = await connection.execute(sql, params)
        await cursor.close()
        if cursor.lastrowid is None:
            raise RuntimeError("the statement inserted no row")
        return cursor.lastrowid

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a query; rows come back as dicts."""
        connection = await self.connection()
        async with connection.execute(sql, params) as cursor:
            return [dict(row) for row in await cursor.fetchall()]

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row of a query, or None."""
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def close(self) -> None:
        """Close the connection (a later call to :meth:`connection` reopens it)."""
        async with self._lock:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                await connection.close()


def init_db(app: Quart, path: Path) -> AppDatabase:
    """Attach the database to ``app``: migrate at startup, close after the drain.

    It is also closed when the app fails to start.
    """
    database = AppDatabase(path)
    app.extensions["app_db"] = database

    async def open_database() -> None:
        await database.connection()

    app.before_serving(open_database)
    close_when_serving_ends(app, database.close)
    return database


def app_db() -> AppDatabase:
    """The current app's database (inside an app context: views and tasks)."""
    database: AppDatabase = current_app.extensions["app_db"]
    return database
