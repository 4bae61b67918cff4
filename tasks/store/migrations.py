"""Versioned schema migrations shipped as ``sql/<backend>/NNNN_name.sql`` files.

Each backend applies the files it has not applied yet, in order, each in its
own transaction, and records them in ``tasks_schema_migrations``. Only files
whose name starts with a digit are migrations: ``queries.sql`` beside them
holds the backend's named queries (:mod:`tasks.store.queries`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: its number, file name and SQL text."""

    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """The migrations for a backend (``sqlite`` or ``postgres``), oldest first."""
    folder = resources.files("tasks.store").joinpath("sql", backend)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql") and entry.name[:1].isdigit():
            number, _, _ = entry.name.partition("_")
            found.append(Migration(int(number), entry.name, entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def split_sqlite_statements(sql: str) -> list[str]:
    """Split a script into complete statements (aiosqlite runs one at a time)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if statement.rstrip(";").strip() and not _only_comments(statement):
                statements.append(statement)
            buffer = ""
    return statements


def _only_comments(statement: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in statement.splitlines())
