"""The app's Alembic migrations (app/migrations.py), on the app file and the task database.

Files and databases left by the previous hand-written runner are adopted at
the version it recorded, never migrated twice; one newer than the code is refused.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from quart import Quart
from sqlalchemy import Connection, MetaData, text

from app.database import Database
from app.db import AppDatabase
from app.migrations import VERSION_TABLE, migration_context
from app.models import AppBase, TaskDbBase
from app.taskdb import TaskDatabase
from tasks import Tasks

# The tables exactly as the previous runner created them, one tuple per version.
OLD_APP_STEPS = (
    (
        "CREATE TABLE records (id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL"
        " UNIQUE, data TEXT NOT NULL, created_at REAL NOT NULL)",
    ),
    (
        "CREATE TABLE users (email TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL)",
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL UNIQUE,"
        " sender TEXT NOT NULL, recipient TEXT NOT NULL, subject TEXT NOT NULL,"
        " body TEXT NOT NULL, created_at REAL NOT NULL)",
    ),
    (
        "CREATE TABLE uploads (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,"
        " path TEXT NOT NULL, size INTEGER NOT NULL, task_id TEXT NOT NULL,"
        " received_at REAL NOT NULL)",
    ),
)
OLD_TABLE = "CREATE TABLE app_schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)"


def old_runner_file(path: Path, version: int, recorded: str = "user_version") -> None:
    """A file as an earlier runner left it: steps 1..version, the version where it kept it."""
    with sqlite3.connect(path) as connection:
        for statements in OLD_APP_STEPS[:version]:
            for statement in statements:
                connection.execute(statement)
        if recorded == "user_version":
            connection.execute(f"PRAGMA user_version = {version}")
        else:
            connection.execute(OLD_TABLE)
            for step in range(1, version + 1):
                connection.execute("INSERT INTO app_schema_migrations VALUES (?, 0)", (step,))
        if version >= 1:
            connection.execute(
                "INSERT INTO records (task_id, data, created_at) VALUES ('t-1', 'kept', 1.0)"
            )
    connection.close()


async def revision(database: Database) -> list[str]:
    async with database.session() as session:
        return list((await session.scalars(text(f"SELECT * FROM {VERSION_TABLE}"))).all())


@pytest.mark.parametrize("recorded", ["user_version", "table"])
async def test_a_file_of_the_old_runner_is_adopted_not_migrated_again(
    tmp_path: Path, recorded: str
) -> None:
    path = tmp_path / "app.sqlite3"
    old_runner_file(path, len(OLD_APP_STEPS), recorded)
    database = AppDatabase(path)
    try:
        # Running revision 1 again would fail: "table records already exists".
        assert await revision(database) == ["app_0003"]
        assert await database.fetch_all("SELECT task_id, data FROM records") == [
            {"task_id": "t-1", "data": "kept"}
        ]
        await database.close()
        assert await revision(database) == ["app_0003"]  # reopened: still one row
    finally:
        await database.close()


async def test_a_file_behind_gets_only_the_revisions_it_lacks(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    old_runner_file(path, 1)
    database = AppDatabase(path)
    try:
        assert await revision(database) == ["app_0003"]
        assert await database.fetch_all("SELECT data FROM records") == [{"data": "kept"}]
        await database.insert(
            "INSERT INTO uploads (name, path, size, task_id, received_at)"
            " VALUES ('a', 'b', 1, 't', 0)"
        )
    finally:
        await database.close()


@pytest.mark.parametrize(
    ("recorded", "found"),
    [
        ("PRAGMA user_version = 9", "schema version 9"),
        (OLD_TABLE + "; INSERT INTO app_schema_migrations VALUES (9, 0)", "schema version 9"),
        (
            f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) PRIMARY KEY);"
            f" INSERT INTO {VERSION_TABLE} VALUES ('app_0099')",
            "revision app_0099",
        ),
    ],
)
async def test_a_file_newer_than_the_code_is_refused_and_left_as_it_was(
    tmp_path: Path, recorded: str, found: str
) -> None:
    path = tmp_path / "app.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(recorded)
    connection.close()
    database = AppDatabase(path)
    with pytest.raises(RuntimeError, match=rf"{found}, newer than this code \(app_0003\)"):
        await database.open()
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()
    assert "records" not in tables
    assert not database.opened


async def test_starters_racing_on_a_new_file_migrate_it_once(tmp_path: Path) -> None:
    databases = [AppDatabase(tmp_path / "app.sqlite3") for _ in range(4)]
    try:
        await asyncio.gather(*(database.open() for database in databases))
        assert [await revision(database) for database in databases] == [["app_0003"]] * 4
    finally:
        for database in databases:
            await database.close()


def differences(connection: Connection, metadata: MetaData) -> list[object]:
    """What autogenerate would change to make the database match ``metadata``'s tables."""

    def ours(name: str | None, kind: str, parent: object) -> bool:
        return kind != "table" or name in metadata.tables  # the engine's tables are not

    return list(compare_metadata(migration_context(connection, include_name=ours), metadata))


async def test_the_models_match_the_migrated_app_file(tmp_path: Path) -> None:
    database = AppDatabase(tmp_path / "app.sqlite3")
    try:
        async with (await database.engine()).connect() as connection:
            assert await connection.run_sync(differences, AppBase.metadata) == []
    finally:
        await database.close()


async def test_the_task_database_tables_migrate_once_and_match_the_models(
    backend_url: str,
) -> None:
    tasks = Tasks(Quart(__name__), database_url=backend_url)
    async with tasks.running():
        database = TaskDatabase(tasks)
        try:
            await database.open()
            await database.close()
            await database.open()  # a restart: the revision is read, nothing runs again
            assert await revision(database) == ["taskdb_0001"]
            async with database.session() as session:
                connection = await session.connection()
                assert await connection.run_sync(differences, TaskDbBase.metadata) == []
        finally:
            await database.close()


async def test_the_old_runners_tables_in_the_task_database_are_adopted(backend_url: str) -> None:
    tasks = Tasks(Quart(__name__), database_url=backend_url)
    async with tasks.running():
        old = TaskDatabase(tasks)
        async with (await old.engine()).begin() as connection:  # as the old runner left it
            await connection.execute(text(f"DROP TABLE {VERSION_TABLE}"))
            await connection.execute(text(OLD_TABLE.replace("REAL", "DOUBLE PRECISION")))
            await connection.execute(text("INSERT INTO app_schema_migrations VALUES (1, 0)"))
            row = (
                "INSERT INTO record_requests (task_id, data, requested_at) VALUES ('t', 'kept', 0)"
            )
            await connection.execute(text(row))
        await old.close()
        database = TaskDatabase(tasks)
        try:
            assert await revision(database) == ["taskdb_0001"]
            async with database.session() as session:
                rows = await session.execute(text("SELECT task_id, data FROM record_requests"))
                assert rows.all() == [("t", "kept")]
        finally:
            await database.close()
