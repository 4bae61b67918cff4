"""Errors a script can rely on: exit code 2 for usage and configuration, 3 for a store
that cannot be used (missing or locked SQLite file, unreachable PostgreSQL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tasks.cli.output import Duration
from tasks.store.sqlite import SQLiteStore
from tests.cli.conftest import run_cli
from tests.store.contract import add

pytestmark = pytest.mark.slow  # each test runs `python -m tasks` subprocesses


def test_bad_or_missing_configuration_exits_2() -> None:
    scheme = run_cli("list", "--database-url", "mysql://localhost/tasks")
    assert scheme.code == 2
    assert "unsupported TASKS_DATABASE_URL scheme 'mysql'" in scheme.err
    assert run_cli("stats", "--database-url", "sqlite://").code == 2  # names no file
    nothing = run_cli("list")
    assert nothing.code == 2
    assert "pass --database-url or --app, or set TASKS_DATABASE_URL" in nothing.err
    plain = run_cli("worker", "tests.cli.conftest:CLI_TIMEOUT")  # not an app with Tasks
    assert plain.code == 1
    assert "has no Tasks extension (call tasks.init_app(app))" in plain.err


def test_missing_sqlite_file_exits_3_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "typo.sqlite3"
    ran = run_cli("queues", "--database-url", f"sqlite:///{path}")
    assert ran.code == 3
    assert f"no task database at {path}" in ran.err
    assert not path.exists()


async def test_locked_sqlite_file_exits_3(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.sqlite3'}"
    store = SQLiteStore(url)
    await store.open()
    await store.close()
    holder = sqlite3.connect(tmp_path / "tasks.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        ran = run_cli("list", url=url)  # bounded by the subprocess timeout
    finally:
        holder.close()
    assert ran.code == 3
    assert "database is locked" in ran.err


def test_unreachable_postgres_exits_3() -> None:
    ran = run_cli("stats", "--database-url", "postgresql://tasks@127.0.0.1:1/tasks")
    assert ran.code == 3
    assert "cannot open PostgreSQL database" in ran.err


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604800), ("12h", 43200), ("30m", 1800), ("45s", 45), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert Duration().convert(text, None, None) == seconds


async def test_the_app_names_the_database_for_python_m_tasks_and_quart_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    store = SQLiteStore(url)
    await store.open()
    await add(store, 2, queue="mail")
    await store.close()
    monkeypatch.setenv("CLI_TEST_DATABASE_URL", url)  # read by tests/cli/configured_app.py
    app = "tests.cli.configured_app:app"

    listed = run_cli("list", "--app", app, "--json").json()
    assert [t["queue"] for t in listed] == ["mail", "mail"]
    stats = run_cli("--app", app, "tasks", "queues", "--json", module="quart").json()
    assert stats == [
        {
            "queue": "mail",
            "queued": 2,
            "running": 0,
            "oldest_queued_age": stats[0]["oldest_queued_age"],
        }
    ]
    assert run_cli("list", "--app", "tests.cli.nowhere:app").code == 2
