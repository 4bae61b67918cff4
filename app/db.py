"""The reference app's own SQLite database: records, outbox, users and uploads.

It is a separate file from the task store (see docs/tour.md, "Where the
app's data lives"). One SQLAlchemy engine per process, created and migrated
by Alembic on first use (a task claimed at startup may need it before the
app's own ``before_serving`` hooks ran) and disposed of after the task
system has drained. The models are in ``app/models.py``; the records
scenario uses them through :meth:`AppDatabase.session`, the others run SQL
through the helpers below, each statement its own transaction. Writes that
must not repeat are keyed by task id and use ``ON CONFLICT ... DO NOTHING``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from quart import Quart, current_app
from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.database import Database, lock_on_begin
from app.lifecycle import close_when_serving_ends
from app.migrations import APP_FILE


class AppDatabase(Database):
    """The app's SQLite file behind one lazily created, migrated engine."""

    target = APP_FILE

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def create_engine(self) -> AsyncEngine:
        """An engine on the file (its folder is created), in WAL mode."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        url = URL.create("sqlite+aiosqlite", database=str(self.path))
        return lock_on_begin(create_async_engine(url), wal=True)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement (its own transaction); returns the rows it changed."""
        async with self.session() as session:
            connection = await session.connection()
            result = await connection.exec_driver_sql(sql, tuple(params))
            return int(result.rowcount)

    async def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one INSERT (its own transaction); returns the new row's id."""
        async with self.session() as session:
            connection = await session.connection()
            result = await connection.exec_driver_sql(sql, tuple(params))
            if result.lastrowid is None:
                raise RuntimeError("the statement inserted no row")
            return int(result.lastrowid)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a query; rows come back as dicts."""
        async with self.session() as session:
            connection = await session.connection()
            result = await connection.exec_driver_sql(sql, tuple(params))
            return [dict(row) for row in result.mappings()]

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        """The first row of a query, or None."""
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None


def init_db(app: Quart, path: Path) -> AppDatabase:
    """Attach the database to ``app``: migrate at startup, close after the drain.

    It is also closed when the app fails to start.
    """
    database = AppDatabase(path)
    app.extensions["app_db"] = database
    app.before_serving(database.open)
    close_when_serving_ends(app, database.close)
    return database


def app_db() -> AppDatabase:
    """The current app's database (inside an app context: views and tasks)."""
    database: AppDatabase = current_app.extensions["app_db"]
    return database
