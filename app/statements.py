"""SQL written once with ``?`` placeholders, run on aiosqlite or asyncpg.

:class:`Transaction` wraps a driver connection that is inside a transaction;
on PostgreSQL each ``?`` becomes ``$1``, ``$2``, ... A broken uniqueness rule
raises :class:`ConflictError` on either driver. :func:`immediate` opens a
SQLite transaction that holds the write lock from its first statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite


class ConflictError(Exception):
    """A write broke a uniqueness rule; the transaction it ran in is rolled back."""


class Transaction:
    """One open transaction on the task database.

    ``connection`` is the driver's connection (aiosqlite or asyncpg): pass it
    to ``tasks.enqueue_in`` to enqueue inside this transaction.
    """

    def __init__(self, connection: Any, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the rows it changed. Raises ConflictError."""
        if self.postgres:
            import asyncpg

            try:
                status: str = await self.connection.execute(numbered(sql), *params)
            except asyncpg.UniqueViolationError as exc:
                raise ConflictError(str(exc)) from exc
            count = status.rsplit(" ", 1)[-1]  # "INSERT 0 1", "UPDATE 2", "CREATE TABLE"
            return int(count) if count.isdigit() else 0
        try:
            cursor = await self.connection.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise ConflictError(str(exc)) from exc
            raise
        await cursor.close()
        return int(cursor.rowcount)

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a query; rows come back as dicts."""
        if self.postgres:
            return [dict(row) for row in await self.connection.fetch(numbered(sql), *params)]
        async with self.connection.execute(sql, params) as cursor:
            return [dict(row) for row in await cursor.fetchall()]


@asynccontextmanager
async def immediate(connection: aiosqlite.Connection) -> AsyncIterator[Transaction]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on an autocommit connection; rolls back on error.

    IMMEDIATE takes the write lock now, so no later statement fails as
    "locked" and concurrent writers (or migrators) go one after another.
    The connection's ``row_factory`` must be :class:`aiosqlite.Row`.
    """
    await connection.execute("BEGIN IMMEDIATE")
    try:
        yield Transaction(connection, postgres=False)
        await connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            await connection.execute("ROLLBACK")
        raise


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1``, ``$2``, ..."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
