"""The one schema-migration runner for the app's tables, wherever they live.

The app keeps tables in two databases: its own SQLite file (``app/db.py``)
and the task database, SQLite or PostgreSQL (``app/taskdb.py``). Both are
migrated here. Contract:

- A :class:`Schema` is a tuple of steps, oldest first; step ``n`` (1-based)
  brings the schema to version ``n``. Append steps; never edit one that shipped.
- Applied versions are rows of ``app_schema_migrations`` (version, applied_at)
  in the migrated database. :func:`migrate` applies the missing steps and
  records each, all inside ONE transaction that the caller opens with the
  backend's write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL an advisory
  lock): concurrent starters migrate one after another, never twice.
- A database migrated before that table existed recorded its version
  elsewhere (the app file: ``PRAGMA user_version``). ``Schema.legacy_version``
  is the query reading it; when the table is empty, that version is taken
  as applied and recorded, so no step runs twice.
- A database at a version newer than the code is refused (RuntimeError).

A later issue may replace this with Alembic; until then it stays this small.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("app.migrations")

TABLE = "app_schema_migrations"


class Statements(Protocol):
    """What the runner needs of an open transaction (see app.statements.Transaction)."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Schema:
    """The app's steps for one database, and how to name it in messages."""

    label: str
    """What is migrated, for logs and errors: ``"the app database"``."""
    steps: tuple[tuple[str, ...], ...]
    """SQL statements per step, oldest first; portable SQL, ``?`` placeholders."""
    legacy_version: str | None = None
    """A query whose first column is a version recorded before ``app_schema_migrations``."""
    hint: str = ""
    """Advice appended to the "newer than this code" error."""


async def migrate(schema: Schema, locked: AbstractAsyncContextManager[Statements]) -> int:
    """Bring the database to the latest version of ``schema``; returns that version.

    ``locked`` opens the transaction, holding the backend's write lock, and
    commits when it exits (rolls back if a step fails: nothing is half-applied).
    """
    latest = len(schema.steps)
    async with locked as db:
        await db.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE}"
            " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        rows = await db.fetch_all(f"SELECT MAX(version) AS version FROM {TABLE}")
        current = int(rows[0]["version"] or 0)
        if current == 0 and schema.legacy_version is not None:
            current = await _adopt_legacy_version(db, schema)
        if current > latest:
            advice = f"; {schema.hint}" if schema.hint else ""
            raise RuntimeError(
                f"{schema.label} is at schema version {current}, newer than this code"
                f" ({latest}){advice}"
            )
        for version, statements in enumerate(schema.steps[current:], start=current + 1):
            for statement in statements:
                await db.execute(statement)
            await _record(db, version)
            log.info("%s migrated to version %d", schema.label, version)
    return latest


async def _adopt_legacy_version(db: Statements, schema: Schema) -> int:
    """Record as applied the steps an older runner applied; returns their count."""
    assert schema.legacy_version is not None
    rows = await db.fetch_all(schema.legacy_version)
    legacy = int(next(iter(rows[0].values()))) if rows else 0
    # Past the code's steps: refused by the caller, and nothing recorded.
    for version in range(1, min(legacy, len(schema.steps)) + 1):
        await _record(db, version)
    if legacy:
        log.info("%s: version %d recorded by the previous runner, adopted", schema.label, legacy)
    return legacy


async def _record(db: Statements, version: int) -> None:
    await db.execute(
        f"INSERT INTO {TABLE} (version, applied_at) VALUES (?, ?)", (version, time.time())
    )
