"""The app's own tables inside the task database, for writes that must commit with a task.

Most of the app's data lives in its own SQLite file (``app/db.py``). A write
that must commit or roll back together with the task it enqueues has to be
in the task database instead, on a connection of the app's own: an aiosqlite
connection to the task store's SQLite file, or an asyncpg pool on its
PostgreSQL database (same URL, so the same ``search_path``). This module
opens that connection from ``TASKS_DATABASE_URL`` (as resolved by the task
system), applies the app's migrations there and hands out transactions;
``tasks.enqueue_in(transaction.connection, ...)`` adds tasks to one.

SQL is written once with ``?`` placeholders and portable types
(:mod:`app.statements`). The app's tables are versioned by
:mod:`app.migrations` in their own ``app_schema_migrations`` table, apart
from the engine's ``tasks_schema_migrations``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aiosqlite
from quart import Quart, current_app

from app.lifecycle import close_when_serving_ends
from app.migrations import Schema, migrate
from app.statements import Transaction, immediate
from tasks import StoreUnavailableError, Tasks
from tasks.store.sqlite import sqlite_path

SCHEMA = Schema(
    "the app's tables in the task database",
    (
        (
            """CREATE TABLE record_requests (
            task_id TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            request_key TEXT UNIQUE,
            requested_at DOUBLE PRECISION NOT NULL,
            done_at DOUBLE PRECISION
        )""",
        ),
    ),
)
"""The app's steps in the task database (see :mod:`app.migrations`); never edit a shipped one."""

_MIGRATION_LOCK = 0x617070  # pg_advisory_xact_lock key: starters migrate one at a time
_BUSY_TIMEOUT_MS = 10_000


def _driver_errors(url: str) -> tuple[type[BaseException], ...]:
    """What the database driver raises when the database did not do the work."""
    errors: tuple[type[BaseException], ...] = (sqlite3.Error, OSError, TimeoutError)
    if urlsplit(url).scheme != "sqlite":
        import asyncpg

        errors += (asyncpg.PostgresError, asyncpg.InterfaceError)
    return errors


class TaskDatabase:
    """The app's connection to the task database, opened on first use and migrated."""

    def __init__(self, tasks: Tasks) -> None:
        self._tasks = tasks
        self._sqlite: aiosqlite.Connection | None = None
        self._pool: Any = None  # asyncpg.Pool; asyncpg is only imported for PostgreSQL
        self._open_lock = asyncio.Lock()
        self._sqlite_lock = asyncio.Lock()  # one transaction at a time on the one connection
        self._errors: tuple[type[BaseException], ...] = ()

    @property
    def opened(self) -> bool:
        """True once the connection is open and the app's migrations are applied."""
        return self._sqlite is not None or self._pool is not None

    async def open(self) -> None:
        """Connect to the database the running task system uses and migrate it.

        Raises StoreUnavailableError when the database cannot be reached.
        """
        async with self._open_lock:
            if self.opened:
                return
            url = self._tasks.config.database_url
            self._errors = _driver_errors(url)
            try:
                await self._connect(url)
            except self._errors as exc:
                raise StoreUnavailableError(
                    f"cannot open the app's tables in the task database: {exc}"
                ) from exc

    async def _connect(self, url: str) -> None:
        if urlsplit(url).scheme == "sqlite":
            connection = await aiosqlite.connect(sqlite_path(url), isolation_level=None)
            try:
                connection.row_factory = aiosqlite.Row
                await connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
                await migrate(SCHEMA, immediate(connection))
            except BaseException:
                await connection.close()
                raise
            self._sqlite = connection
        else:
            import asyncpg

            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=4, server_settings={"application_name": "app.taskdb"}
            )
            try:
                await migrate(SCHEMA, _advisory_locked(pool))
            except BaseException:
                await pool.close()
                raise
            self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A transaction that commits when the block ends and rolls back if it raises."""
        if not self.opened:
            await self.open()
        try:
            if self._pool is not None:
                async with self._pool.acquire() as connection, connection.transaction():
                    yield Transaction(connection, postgres=True)
            else:
                async with self._sqlite_transaction() as transaction:
                    yield transaction
        except self._errors as exc:
            raise StoreUnavailableError(
                f"cannot write the app's tables in the task database: {exc}"
            ) from exc

    @asynccontextmanager
    async def _sqlite_transaction(self) -> AsyncIterator[Transaction]:
        connection = self._sqlite
        assert connection is not None
        async with self._sqlite_lock, immediate(connection) as transaction:
            yield transaction

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run one query outside any transaction of the caller's."""
        if not self.opened:
            await self.open()
        try:
            if self._pool is not None:
                async with self._pool.acquire() as connection:
                    return await Transaction(connection, postgres=True).fetch_all(sql, params)
            assert self._sqlite is not None
            async with self._sqlite_lock:
                return await Transaction(self._sqlite, postgres=False).fetch_all(sql, params)
        except self._errors as exc:
            raise StoreUnavailableError(
                f"cannot read the app's tables in the task database: {exc}"
            ) from exc

    async def close(self) -> None:
        """Close the connection (a later use reopens it)."""
        async with self._open_lock:
            connection, self._sqlite = self._sqlite, None
            pool, self._pool = self._pool, None
            if connection is not None:
                await connection.close()
            if pool is not None:
                await pool.close()


@asynccontextmanager
async def _advisory_locked(pool: Any) -> AsyncIterator[Transaction]:
    """A PostgreSQL transaction holding the app's migration lock until it ends."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        yield Transaction(connection, postgres=True)


def init_task_db(app: Quart, tasks: Tasks) -> TaskDatabase:
    """Attach the app's task-database connection to ``app``.

    It opens (and migrates) at startup, after the task system started
    (``tasks.init_app`` registered its hooks first), and closes after the
    task system has drained. A task claimed before the app's own startup
    hook ran opens it on first use.
    """
    database = TaskDatabase(tasks)
    app.extensions["app_task_db"] = database
    app.before_serving(database.open)
    close_when_serving_ends(app, database.close)
    return database


def task_db() -> TaskDatabase:
    """The current app's task-database connection (inside an app context)."""
    database: TaskDatabase = current_app.extensions["app_task_db"]
    return database
