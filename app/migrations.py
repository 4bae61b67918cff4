"""Alembic migrations of the app's tables, in its own file and in the task database.

The app keeps tables in two databases: its own SQLite file (``app/db.py``,
target :data:`APP_FILE`) and the task database, SQLite or PostgreSQL
(``app/taskdb.py``, target :data:`TASK_DB`). Each has its revisions in a
directory of ``app/alembic/`` and its applied revision in the table
``app_alembic_version``, apart from the engine's ``tasks_schema_migrations``.
Contract of :func:`migrate`:

- It upgrades to the newest revision inside ONE transaction that holds the
  backend's write lock (SQLite ``BEGIN IMMEDIATE``, see ``app/engines.py``;
  PostgreSQL an advisory lock): concurrent starters migrate one after the
  other, never twice, and a failed revision leaves nothing behind.
- A database migrated by the previous hand-written runner is adopted: when it
  has no Alembic version yet, the version that runner recorded (its
  ``app_schema_migrations`` table, or before that ``PRAGMA user_version`` in
  the app file) is stamped as the matching revision, so no table is created twice.
- A database at a revision this code does not know is refused (RuntimeError)
  and left as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import AppBase, TaskDbBase

log = logging.getLogger("app.migrations")

VERSION_TABLE = "app_alembic_version"
LEGACY_TABLE = "app_schema_migrations"
_SCRIPTS = Path(__file__).parent / "alembic"
_PG_LOCK = 0x617070  # pg_advisory_xact_lock key: starters migrate one at a time


@dataclass(frozen=True)
class Target:
    """One database's revisions, and what the previous runner left there."""

    label: str
    """What is migrated, for logs and errors: ``"the app database"``."""
    versions: str
    """The directory of its revisions under ``app/alembic/``."""
    metadata: MetaData
    legacy_revisions: tuple[str, ...]
    """The revision matching each version of the previous runner (1 first)."""
    legacy_pragma: bool = False
    """True if an even older runner kept the version in ``PRAGMA user_version``."""
    hint: str = ""
    """Advice appended to the "newer than this code" error."""


APP_FILE = Target(
    "the app database",
    "app_file",
    AppBase.metadata,
    ("app_0001", "app_0002", "app_0003"),
    legacy_pragma=True,
    hint="upgrade the app or point APP_DATABASE_PATH elsewhere",
)
TASK_DB = Target(
    "the app's tables in the task database", "task_db", TaskDbBase.metadata, ("taskdb_0001",)
)


def alembic_config(target: Target, connection: Connection) -> Config:
    """Alembic's configuration for ``target``, set in code (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(_SCRIPTS / target.versions))
    config.attributes["connection"] = connection
    config.attributes["metadata"] = target.metadata
    return config


async def migrate(engine: AsyncEngine, target: Target) -> None:
    """Bring ``target`` on ``engine`` to its newest revision (see the module's contract)."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        await connection.run_sync(_upgrade, target)


def migration_context(connection: Connection, **opts: Any) -> MigrationContext:
    """Alembic's view of ``connection``, with the app's version table (and ``opts``)."""
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE, **opts})


def _upgrade(connection: Connection, target: Target) -> None:
    config = alembic_config(target, connection)
    scripts = ScriptDirectory.from_config(config)
    known = {script.revision for script in scripts.walk_revisions()}
    head = scripts.get_current_head()
    current = migration_context(connection).get_current_heads()
    if not current:
        legacy = _legacy_version(connection, target)
        if legacy > len(target.legacy_revisions):
            _refuse(target, f"schema version {legacy}", head)
        if legacy:
            command.stamp(config, target.legacy_revisions[legacy - 1])
            log.info("%s: version %d of the previous runner adopted", target.label, legacy)
    elif unknown := set(current) - known:
        _refuse(target, f"revision {', '.join(sorted(unknown))}", head)
    command.upgrade(config, "head")


def _legacy_version(connection: Connection, target: Target) -> int:
    """The version the previous runner recorded; 0 if it never ran here."""
    if inspect(connection).has_table(LEGACY_TABLE):
        version = connection.scalar(text(f"SELECT MAX(version) FROM {LEGACY_TABLE}"))
        if version:
            return int(version)
    if target.legacy_pragma and connection.dialect.name == "sqlite":
        return int(connection.scalar(text("PRAGMA user_version")) or 0)
    return 0


def _refuse(target: Target, found: str, latest: str | None) -> None:
    advice = f"; {target.hint}" if target.hint else ""
    raise RuntimeError(f"{target.label} is at {found}, newer than this code ({latest}){advice}")
