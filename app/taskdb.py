"""The app's own tables inside the task database, for writes that must commit with a task.

Most of the app's data lives in its own SQLite file (``app/db.py``). A write
that must commit or roll back together with the task it enqueues has to be
in the task database instead, on a connection of the app's own. This module
creates an SQLAlchemy engine from ``TASKS_DATABASE_URL`` (as resolved by the
task system): aiosqlite on the task store's SQLite file, or asyncpg on its
PostgreSQL database, connecting with the very URL the store uses (so the
same ``search_path``). Alembic migrates the app's tables there at startup
(``app/migrations.py``, version in ``app_alembic_version``, apart from the
engine's ``tasks_schema_migrations``); ``tasks.enqueue_in(session, ...)``
adds tasks to a session's transaction.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from quart import Quart, current_app
from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.database import Database, lock_on_begin
from app.lifecycle import close_when_serving_ends
from app.migrations import TASK_DB
from tasks import Tasks
from tasks.store.sqlite import sqlite_path


class TaskDatabase(Database):
    """The app's engine on the task database, created on first use and migrated."""

    target = TASK_DB

    def __init__(self, tasks: Tasks) -> None:
        super().__init__()
        self._tasks = tasks

    def create_engine(self) -> AsyncEngine:
        """An engine on the database the running task system uses."""
        url = self._tasks.config.database_url
        if urlsplit(url).scheme == "sqlite":
            sqlite_url = URL.create("sqlite+aiosqlite", database=str(sqlite_path(url)))
            return lock_on_begin(create_async_engine(sqlite_url))
        import asyncpg

        async def connect() -> Any:
            # asyncpg reads the URL itself, as the task store does: query
            # parameters such as search_path become the same server settings.
            return await asyncpg.connect(url, server_settings={"application_name": "app.taskdb"})

        return create_async_engine(
            "postgresql+asyncpg://", async_creator=connect, pool_size=4, max_overflow=0
        )


def init_task_db(app: Quart, tasks: Tasks) -> TaskDatabase:
    """Attach the app's task-database engine to ``app``.

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
    """The current app's task-database engine (inside an app context)."""
    database: TaskDatabase = current_app.extensions["app_task_db"]
    return database
