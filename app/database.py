"""An SQLAlchemy async engine opened on first use and migrated by Alembic.

:class:`Database` is what the app's two databases share (``app/db.py``, the
app's own file; ``app/taskdb.py``, its tables in the task database): the
engine is created and migrated (``app/migrations.py``) on first use, and
:meth:`Database.session` hands out an ``AsyncSession`` whose transaction
commits when the block ends. Driver failures become
:class:`~tasks.StoreUnavailableError`; a broken uniqueness rule
:class:`ConflictError`.

On SQLite each transaction starts with ``BEGIN IMMEDIATE`` (SQLAlchemy's
recipe for the aiosqlite driver: the driver's own implicit BEGIN is turned
off), so it holds the write lock from its first statement: no later statement
fails as "locked", and concurrent writers, or migrators, go one after another.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import ConnectionPoolEntry

from app.migrations import Target, migrate
from tasks import StoreUnavailableError
from tasks.store.sqlite.connection import WAL_ATTEMPTS, WAL_RETRY_PAUSE

BUSY_TIMEOUT_MS = 10_000


class ConflictError(Exception):
    """A write broke a uniqueness rule; the transaction it ran in is rolled back."""


def _enable_wal(cursor: Any) -> None:
    """Switch to WAL; starters racing on a new file are answered "locked" at once: retry.

    (SQLite does not wait on its busy timeout for a contended journal-mode
    switch; the engine's store does the same, see ``tasks.store.sqlite``.)
    """
    for attempt in range(WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt + 1 == WAL_ATTEMPTS:
                raise
            time.sleep(WAL_RETRY_PAUSE)  # on the connection's own thread, not the loop


def lock_on_begin(engine: AsyncEngine, *, wal: bool = False) -> AsyncEngine:
    """Make every transaction on a SQLite ``engine`` a ``BEGIN IMMEDIATE`` one."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN from the driver
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if wal:
            _enable_wal(cursor)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_unique_violation(error: IntegrityError) -> bool:
    """True if ``error`` broke a UNIQUE constraint (SQLite or PostgreSQL)."""
    return getattr(error.orig, "sqlstate", None) == "23505" or "UNIQUE" in str(error.orig)


class Database:
    """An engine created by :meth:`create_engine`, migrated to ``target`` when first opened."""

    target: Target
    unavailable = "cannot use {label}: {error}"

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._lock = asyncio.Lock()

    def create_engine(self) -> AsyncEngine:
        """A new engine on this database (subclasses say where)."""
        raise NotImplementedError

    @property
    def opened(self) -> bool:
        """True once the engine is created and the migrations are applied."""
        return self._engine is not None

    async def engine(self) -> AsyncEngine:
        """The migrated engine; the first call creates and migrates it.

        Raises StoreUnavailableError when the database cannot be reached, and
        RuntimeError when it is newer than this code.
        """
        if self._engine is None:
            async with self._lock:
                if self._engine is None:
                    engine = self.create_engine()
                    try:
                        await migrate(engine, self.target)
                    except (DBAPIError, OSError) as exc:
                        await engine.dispose()
                        raise self._translated(exc) from exc
                    except BaseException:
                        await engine.dispose()
                        raise
                    self._engine = engine
        return self._engine

    async def open(self) -> None:
        """Create and migrate the engine now (a startup hook)."""
        await self.engine()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits when the block ends, rolls back if it raises."""
        engine = await self.engine()
        try:
            async with AsyncSession(engine, expire_on_commit=False) as session, session.begin():
                yield session
        except (DBAPIError, OSError) as exc:
            raise self._translated(exc) from exc

    def _translated(self, exc: DBAPIError | OSError) -> Exception:
        if isinstance(exc, IntegrityError) and is_unique_violation(exc):
            return ConflictError(str(exc.orig))
        return StoreUnavailableError(self.unavailable.format(label=self.target.label, error=exc))

    async def close(self) -> None:
        """Close every connection (a later use reopens and checks the migrations again)."""
        async with self._lock:
            engine, self._engine = self._engine, None
            if engine is not None:
                await engine.dispose()
