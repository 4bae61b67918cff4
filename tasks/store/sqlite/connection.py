"""Opening the SQLite file: URL, connections, pragmas, migrations, file identity.

:func:`connect` gives a configured aiosqlite connection (busy timeout,
``synchronous``) whose thread cannot keep the process alive;
:func:`prepare_writer` switches the file to WAL without automatic
checkpoints (see :mod:`~tasks.store.sqlite.checkpoints`), applies the
migrations and fails at once if the file can only be read.
:class:`FileIdentity` notices when the paths no longer name the files that
were opened. :func:`on_connection_thread` runs a plain ``sqlite3`` function
on a connection's own thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiosqlite

from tasks.errors import StoreUnavailableError
from tasks.store.migrations import load_migrations, split_sqlite_statements
from tasks.store.queries import load_queries

log = logging.getLogger("tasks.store")

_T = TypeVar("_T")
_SQL = load_queries("sqlite")
WAL_SIZE_LIMIT = 64 * 1024 * 1024
"""``journal_size_limit``: the WAL file is cut back to this size when it restarts."""


def sqlite_path(url: str) -> str:
    """The file path in a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ValueError(f"not a sqlite URL: {url!r}")
    path = unquote(parts.path)
    path = path[1:] if path.startswith("/") else path
    if not path:
        raise ValueError(f"sqlite URL names no file: {url!r}")
    return path


RECURSIVE_TRIGGERS = "PRAGMA recursive_triggers=ON"
"""Every connection that writes: a workflow's triggers cascade through its steps."""


async def connect(path: str, busy_timeout: float, synchronous: str) -> aiosqlite.Connection:
    """A configured connection; closed again (its thread ended) if set-up fails.

    Its thread is a daemon: should a connection ever be left open, it must
    not keep the process alive after the event loop is gone.
    """
    conn = aiosqlite.connect(path, isolation_level=None)
    conn._thread.daemon = True  # aiosqlite pinned (see on_connection_thread)
    await conn
    try:
        await conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        await conn.execute(f"PRAGMA synchronous={synchronous}")
        await conn.execute(RECURSIVE_TRIGGERS)
    except BaseException:
        await conn.close()
        raise
    return conn


def connect_inline(path: str, synchronous: str) -> sqlite3.Connection:
    """A writer connection for small batches on the event loop's thread.

    Its busy timeout is 0: when another process holds the write lock, its
    ``BEGIN IMMEDIATE`` fails at once (the batch then waits on the writer's
    thread instead of blocking the loop). Like the writer it never
    checkpoints. Opened on any thread, used only by the loop's.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout=0")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        conn.execute(RECURSIVE_TRIGGERS)
    except BaseException:
        conn.close()
        raise
    return conn


def busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` says another connection holds the lock."""
    return "locked" in str(exc) or "busy" in str(exc)


WAL_ATTEMPTS = 100
WAL_RETRY_PAUSE = 0.02
"""Seconds between two tries of a contended switch to WAL (2 s in all)."""


async def enable_wal(db: aiosqlite.Connection) -> None:
    """Switch the file to WAL mode; a switch that races other openers is tried again.

    Several processes (``hypercorn -w N``) opening a new file at once all ask
    for the switch, which needs the file to themselves; SQLite answers the
    losers "database is locked" at once, without waiting on its busy timeout.
    Once the file is in WAL mode the switch is a no-op and never contends.
    """
    for attempt in range(WAL_ATTEMPTS):
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt + 1 == WAL_ATTEMPTS:
                raise
            await asyncio.sleep(WAL_RETRY_PAUSE)


async def prepare_writer(db: aiosqlite.Connection, path: str) -> None:
    """WAL mode without automatic checkpoints, migrations applied, writability checked."""
    await enable_wal(db)
    await db.execute("PRAGMA wal_autocheckpoint=0")
    await db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    await _migrate(db, path)
    await _check_writable(db)


async def _migrate(db: aiosqlite.Connection, path: str) -> None:
    """Apply the migrations not applied yet, each in a ``BEGIN IMMEDIATE`` transaction."""
    await db.execute(_SQL["migrations_table"])
    for migration in load_migrations("sqlite"):
        await db.execute("BEGIN IMMEDIATE")
        try:
            rows = await db.execute_fetchall(_SQL["migration_applied"], (migration.version,))
            if not list(rows):
                for statement in split_sqlite_statements(migration.sql):
                    await db.execute(statement)
                await db.execute(
                    _SQL["record_migration"], (migration.version, migration.name, time.time())
                )
                log.info("applied migration %s to %s", migration.name, path)
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise


async def _check_writable(db: aiosqlite.Connection) -> None:
    """Fail at open, not at the first write, when the file can only be read.

    SQLite silently opens a file it cannot write (read-only file, immutable
    flag) read-only; a row update that is rolled back finds out.
    """
    await db.execute("BEGIN IMMEDIATE")
    try:
        await db.execute(_SQL["touch_migrations"])
    finally:
        await db.execute("ROLLBACK")


def on_connection_thread(
    db: aiosqlite.Connection, fn: Callable[..., _T], *args: Any
) -> Awaitable[_T]:
    """Run ``fn(connection, *args)`` on ``db``'s own thread, in order with its other calls.

    aiosqlite runs every call of a connection on that connection's thread;
    ``Connection._execute`` is how its own methods queue one there. It has no
    public equivalent, so the supported aiosqlite versions are pinned in
    ``pyproject.toml`` and the store's tests fail at once if it changes.
    """
    return db._execute(fn, db._conn, *args)  # type: ignore[no-untyped-call]


class FileIdentity:
    """Whether the database and WAL paths still name the files that were opened.

    SQLite keeps writing to the file it opened, even after that file was
    deleted or renamed (or its ``-wal`` file deleted): commits would then go
    to a file nobody will ever open again, and tasks reported as accepted
    would be gone after a restart. :meth:`check` compares (device, inode);
    once they differ it raises for good, after one critical log line.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._files: list[tuple[str, tuple[int, int] | None]] = []
        self._lost: str | None = None
        """Why the open file is no longer the one at :attr:`path` (then nothing is written)."""

    def record(self) -> None:
        """Remember what the paths name now (just after they were opened)."""
        self._files = [(p, _identity(p)) for p in (self.path, f"{self.path}-wal")]

    def check(self) -> None:
        """Raise :class:`StoreUnavailableError` if a file was deleted or replaced."""
        if self._lost is None:
            for path, opened in self._files:
                now = _identity(path)
                if now != opened:
                    change = "deleted" if now is None else "replaced by another file"
                    self._lost = (
                        f"task database file {path} was {change} while open; nothing more is"
                        " written to it: restore the file or start a new one, then restart"
                        " the process"
                    )
                    log.critical("%s", self._lost)
                    break
        if self._lost is not None:
            raise StoreUnavailableError(self._lost)


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None if there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def check_directory(path: str) -> None:
    """Raise a clear error when the file's directory does not exist (SQLite's is vague)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise StoreUnavailableError(
            f"cannot open task database {path}: directory {parent} does not exist"
        )


def os_cause(path: str) -> str | None:
    """Why the operating system will not let us write ``path``, if it says (for messages)."""
    try:
        if os.path.exists(path):
            os.close(os.open(path, os.O_RDWR))
        else:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644))
            os.unlink(path)
    except OSError as exc:
        return exc.strerror
    return None
