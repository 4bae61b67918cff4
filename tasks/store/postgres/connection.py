"""Reaching PostgreSQL: URL description, error classes, the pool, migrations.

Messages name the server and database (:func:`describe_url`) and never the
password (:func:`redact`). :func:`migrate` applies the migrations under one
advisory lock, so concurrent starters apply each exactly once.
"""

from __future__ import annotations

import logging
import time
from typing import Any, TypeAlias
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from tasks.store.migrations import load_migrations
from tasks.store.queries import load_queries

log = logging.getLogger("tasks.store")

Connection: TypeAlias = Any
"""An ``asyncpg.Connection`` (or pool proxy); asyncpg is untyped."""

DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
"""Errors that mean "the database did not do it": server, driver, protocol and network
errors, and timeouts."""
OPEN_ERRORS: tuple[type[BaseException], ...] = (*DB_ERRORS, ValueError)  # ValueError: bad URL
RETRYABLE: tuple[type[BaseException], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
"""The server rolled the whole transaction back; running it again is safe."""
APPLICATION_NAME = "quart-taskqueue"

_SQL = load_queries("postgres")
_MIGRATION_LOCK = 0x7461736B73  # "tasks": one advisory lock for every starter


def describe_url(url: str) -> str:
    """Name the server and database of a PostgreSQL URL, without its password."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user = unquote(userinfo.partition(":")[0]) or query.get("user", [""])[0]
    hosts = hosts or query.get("host", ["localhost"])[0]
    database = unquote(parts.path.lstrip("/")) or query.get("dbname", [""])[0] or user
    who = f" as {user}" if user else ""
    return f"PostgreSQL database {database or '(default)'!r} on {hosts}{who}"


def secrets(url: str) -> list[str]:
    """The password in ``url`` as it may appear in error messages (raw and decoded)."""
    parts = urlsplit(url)
    found = [] if parts.password is None else [parts.password, unquote(parts.password)]
    found += parse_qs(parts.query).get("password", [])
    return [s for s in found if s]


def redact(exc: BaseException, hidden: list[str]) -> str:
    """``exc`` as ``Type: message`` for an error message, each of ``hidden`` masked."""
    text = str(exc) or repr(exc)
    for secret in hidden:
        text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}"


def server_settings(url: str) -> dict[str, str] | None:
    """Settings for each new connection: our ``application_name`` unless the URL names one."""
    if "application_name" in parse_qs(urlsplit(url).query):
        return None
    return {"application_name": APPLICATION_NAME}


async def migrate(pool: Any, description: str) -> None:
    """Apply the migrations not applied yet, each in its own transaction."""
    async with pool.acquire() as conn:
        for migration in load_migrations("postgres"):
            async with conn.transaction():
                # Serialise concurrent starters: the lock is held until commit.
                await conn.execute(_SQL["advisory_lock"], _MIGRATION_LOCK)
                await conn.execute(_SQL["migrations_table"])
                done = await conn.fetchval(_SQL["migration_applied"], migration.version)
                if done is None:
                    await conn.execute(migration.sql)  # no arguments: multi-statement
                    await conn.execute(
                        _SQL["record_migration"], migration.version, migration.name, time.time()
                    )
                    log.info("applied migration %s to %s", migration.name, description)
