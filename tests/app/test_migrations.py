"""The app's one migration runner (app/migrations.py), on the app file and the task database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from quart import Quart

from app.db import SCHEMA, AppDatabase
from app.taskdb import TaskDatabase
from tasks import Tasks


def old_runner_file(path: Path, version: int) -> None:
    """A file as the previous runner left it: steps 1..version, ``PRAGMA user_version``."""
    with sqlite3.connect(path) as connection:
        for statements in SCHEMA.steps[:version]:
            for statement in statements:
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {version}")
        if version >= 1:
            connection.execute(
                "INSERT INTO records (task_id, data, created_at) VALUES ('t-1', 'kept', 1.0)"
            )
    connection.close()


async def versions(database: AppDatabase) -> list[int]:
    rows = await database.fetch_all("SELECT version FROM app_schema_migrations ORDER BY version")
    return [row["version"] for row in rows]


async def test_a_file_at_the_old_user_version_is_recognised_not_migrated_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.sqlite3"
    old_runner_file(path, len(SCHEMA.steps))
    database = AppDatabase(path)
    try:
        # Running step 1 again would fail: "table records already exists".
        assert await versions(database) == [1, 2, 3]
        assert await database.fetch_all("SELECT task_id, data FROM records") == [
            {"task_id": "t-1", "data": "kept"}
        ]
        await database.close()
        assert await versions(database) == [1, 2, 3]  # reopened: nothing recorded twice
    finally:
        await database.close()


async def test_a_file_behind_gets_only_the_steps_it_lacks(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    old_runner_file(path, 1)
    database = AppDatabase(path)
    try:
        assert await versions(database) == [1, 2, 3]
        assert await database.fetch_all("SELECT data FROM records") == [{"data": "kept"}]
        await database.insert(
            "INSERT INTO uploads (name, path, size, task_id, received_at)"
            " VALUES ('a', 'b', 1, 't', 0)"
        )
    finally:
        await database.close()


@pytest.mark.parametrize("recorded", ["user_version", "table"])
async def test_a_file_newer_than_the_code_is_refused_and_left_as_it_was(
    tmp_path: Path, recorded: str
) -> None:
    path = tmp_path / "app.sqlite3"
    old_runner_file(path, 0)
    with sqlite3.connect(path) as connection:
        if recorded == "user_version":
            connection.execute("PRAGMA user_version = 9")
        else:
            connection.execute(
                "CREATE TABLE app_schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)"
            )
            connection.execute("INSERT INTO app_schema_migrations VALUES (9, 0)")
    connection.close()
    database = AppDatabase(path)
    try:
        with pytest.raises(RuntimeError, match=r"schema version 9, newer than this code \(3\)"):
            await database.connection()
    finally:
        await database.close()
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()
    assert "records" not in tables


async def test_the_task_database_tables_migrate_once_on_either_backend(backend_url: str) -> None:
    tasks = Tasks(Quart(__name__), database_url=backend_url)
    async with tasks.running():
        database = TaskDatabase(tasks)
        try:
            await database.open()
            await database.close()
            await database.open()  # a restart: the version is read, no step runs again
            rows = await database.fetch_all("SELECT version FROM app_schema_migrations")
            assert rows == [{"version": 1}]
            assert await database.fetch_all("SELECT task_id FROM record_requests") == []
        finally:
            await database.close()
