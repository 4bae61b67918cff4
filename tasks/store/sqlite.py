"""The SQLite backend, on aiosqlite: one file, WAL mode, group-committed writes.

Two connections: a writer that runs every state change through
:class:`~tasks.store.batching.GroupCommit` in ``BEGIN IMMEDIATE`` transactions
(a deferred transaction that reads, then writes, fails at once with
``database is locked`` when another process wrote in between), and a reader for
queries, which WAL lets run while a write is in progress. Each transaction is
one plain ``sqlite3`` function run on the writer's aiosqlite thread, so a batch
costs one round trip to that thread. A third connection checkpoints the WAL.
Several processes may share the file; the busy timeout plus a bounded retry
absorb contention.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiosqlite

from tasks.errors import StoreUnavailableError, TasksError, WriteRejectedError
from tasks.model import ErrorInfo, Finish, NewTask, Progress, State, TaskRecord
from tasks.store import rows as shared_rows
from tasks.store.base import Inserted, Reclaimed, queue_full
from tasks.store.batching import (
    ClosedError,
    GroupCommit,
    RequestFailed,
    WriteRequest,
    claim_payload,
)
from tasks.store.listing import Listings
from tasks.store.migrations import load_migrations, split_sqlite_statements
from tasks.store.rows import COLUMNS, record_from_row, summary_columns

log = logging.getLogger("tasks.store")

_T_COLUMNS = ", ".join(f"tasks.{c.strip()}" for c in COLUMNS.split(","))

_INSERT = (
    "INSERT INTO tasks (id, name, queue, state, args, kwargs, priority, max_attempts,"
    " run_at, created_at, idempotency_key) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)"
)
_FINISH_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_FINISH = """
UPDATE tasks SET
    state = v.column2,
    result = v.column3,
    error_type = CASE WHEN v.column8 THEN tasks.error_type ELSE v.column4 END,
    error_message = CASE WHEN v.column8 THEN tasks.error_message ELSE v.column5 END,
    error_traceback = CASE WHEN v.column8 THEN tasks.error_traceback ELSE v.column6 END,
    run_at = COALESCE(v.column7, tasks.run_at),
    attempts = tasks.attempts - v.column8,
    progress_current = COALESCE(v.column9, tasks.progress_current),
    progress_total = COALESCE(v.column10, tasks.progress_total),
    progress_message = COALESCE(v.column11, tasks.progress_message),
    started_at = CASE WHEN v.column2 = 'queued' THEN NULL ELSE tasks.started_at END,
    finished_at = CASE WHEN v.column2 = 'queued' THEN NULL ELSE ? END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    version = tasks.version + 1
FROM (VALUES {rows}) AS v
WHERE tasks.id = v.column1 AND tasks.lease_owner = v.column12
    AND (tasks.state = 'running' OR (tasks.state = 'cancelling' AND v.column2 = 'cancelled'))
RETURNING tasks.id
"""
_INSERT_KEYED = _INSERT + " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
_SELECT_KEY = "SELECT id FROM tasks WHERE idempotency_key = ?"
_COUNT_QUEUED = "SELECT COUNT(*) FROM tasks WHERE state = 'queued'"
_CANCEL = (
    "UPDATE tasks SET version = version + 1,"
    " state = CASE state WHEN 'running' THEN 'cancelling' ELSE 'cancelled' END,"
    " finished_at = CASE state WHEN 'running' THEN NULL ELSE ? END,"
    " lease_owner = CASE state WHEN 'running' THEN lease_owner END,"
    " lease_expires_at = CASE state WHEN 'running' THEN lease_expires_at END"
    " WHERE id = ? AND state IN ('queued', 'running')"
)
"""Queued tasks are cancelled at once; running ones are asked to stop (see Store.cancel)."""
_RELEASE = (
    "UPDATE tasks SET version = version + 1, lease_owner = NULL, lease_expires_at = NULL,"
    " state = CASE state WHEN 'cancelling' THEN 'cancelled' ELSE 'queued' END,"
    " attempts = CASE state WHEN 'cancelling' THEN attempts ELSE MAX(attempts - 1, 0) END,"
    " started_at = CASE state WHEN 'cancelling' THEN started_at END,"
    " finished_at = CASE state WHEN 'cancelling' THEN ? END"
)
"""Gives a claimed task back; one asked to stop ends cancelled instead (see Store.release)."""
_CHUNK = 500
_T = TypeVar("_T")
_BUSY_RETRIES = 3
_CHECKPOINT_INTERVAL = 0.5
"""Seconds between WAL checkpoints while writes go on (see ``_checkpoint_loop``)."""
_WAL_RESTART_PAGES = 1000
"""Log size (pages) past which a ``RESTART`` checkpoint follows the passive one."""
_RESTART_WAIT_MS = 50
"""How long a ``RESTART`` checkpoint waits for other connections before trying later."""
_WAL_SIZE_LIMIT = 64 * 1024 * 1024
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


def _text(value: str | None) -> str | None:
    """``value`` as valid UTF-8: lone surrogates (from undecodable file names, say)
    become ``?`` rather than failing the whole batch."""
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "replace").decode("utf-8")


def _number(value: float | None) -> float | None:
    """Progress numbers go to REAL columns: a huge int must not overflow the binding."""
    return None if value is None else float(value)


def _dumps_error(error: ErrorInfo | None) -> tuple[str | None, str | None, str | None]:
    if error is None:
        return None, None, None
    return _text(error.type), _text(error.message), _text(error.traceback)


class SQLiteStore(Listings):
    """Tasks in one SQLite file. See :class:`tasks.store.base.Store` for the contract."""

    def __init__(self, url: str, *, busy_timeout: float = 5.0, synchronous: str = "NORMAL") -> None:
        self.url = url
        self.path = sqlite_path(url)
        self.busy_timeout = busy_timeout
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"invalid SQLite synchronous setting: {synchronous!r}")
        self.synchronous = synchronous.upper()
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoints: asyncio.Task[None] | None = None
        self._commit_count = 0
        """Transactions committed by this store (the checkpointer compares it)."""
        self._commits = GroupCommit(self._run_batch)
        self._files: list[tuple[str, tuple[int, int] | None]] = []
        """The database and WAL paths with the (device, inode) they named at open."""
        self._lost: str | None = None
        """Why the open file is no longer the one at :attr:`path` (then nothing is written)."""

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        """Open both connections, switch to WAL and apply migrations."""
        _check_directory(self.path)
        try:
            self._writer = await self._connect()
            await self._writer.execute("PRAGMA journal_mode=WAL")
            await self._writer.execute("PRAGMA wal_autocheckpoint=0")
            await self._writer.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
            await self._migrate()
            await self._check_writable()
            self._reader = await self._connect()
            await self._reader.execute("PRAGMA query_only=ON")
            self._checkpointer = await self._connect()
            self._files = [(p, _identity(p)) for p in (self.path, f"{self.path}-wal")]
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            cause = _os_cause(self.path)
            raise StoreUnavailableError(
                f"cannot open task database {self.path}: {exc}{f' ({cause})' if cause else ''}"
            ) from exc
        self._commits.start()
        self._checkpoints = asyncio.create_task(self._checkpoint_loop(), name="tasks-checkpoint")

    async def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database off the write path, and keep it small.

        The writer runs with ``wal_autocheckpoint=0``, so no commit pays for a
        checkpoint (SQLite's automatic one runs inside a commit every 1,000
        pages and was the cause of a ~20 ms p99 enqueue-to-start latency).
        Instead, every :data:`_CHECKPOINT_INTERVAL` seconds in which something
        was committed, a ``PASSIVE`` checkpoint runs on a connection (and
        aiosqlite thread) of its own; it never blocks writers or readers. Under
        a steady write load the log never starts over by itself, so once it is
        longer than :data:`_WAL_RESTART_PAGES` a short ``RESTART`` follows; once
        the store has gone quiet, ``TRUNCATE`` empties the file.
        """
        seen = self._commit_count
        truncated = True
        while True:
            await asyncio.sleep(_CHECKPOINT_INTERVAL)
            checkpointer = self._checkpointer
            if checkpointer is None:
                return
            count = self._commit_count
            busy = count != seen
            if not busy and truncated:
                continue
            seen = count
            try:
                if busy:
                    log_pages = await _checkpoint(checkpointer, "PASSIVE", 0)
                    if log_pages > _WAL_RESTART_PAGES:
                        await _checkpoint(checkpointer, "RESTART", _RESTART_WAIT_MS)
                    truncated = False
                else:
                    await _checkpoint(checkpointer, "TRUNCATE", 0)
                    truncated = True
            except sqlite3.Error as exc:
                log.debug("WAL checkpoint of %s failed: %s", self.path, exc)

    async def _check_writable(self) -> None:
        """Fail at open, not at the first write, when the file can only be read.

        SQLite silently opens a file it cannot write (read-only file, immutable
        flag) read-only; a row update that is rolled back finds out.
        """
        db = self._db
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute(
                "UPDATE tasks_schema_migrations SET applied_at = applied_at"
                " WHERE version = (SELECT MAX(version) FROM tasks_schema_migrations)"
            )
        finally:
            await db.execute("ROLLBACK")

    async def _connect(self) -> aiosqlite.Connection:
        """A configured connection; closed again (its thread ended) if set-up fails.

        Its thread is a daemon: should a connection ever be left open, it must
        not keep the process alive after the event loop is gone.
        """
        conn = aiosqlite.connect(self.path, isolation_level=None)
        conn._thread.daemon = True  # aiosqlite pinned (see _on_connection_thread)
        await conn
        try:
            await conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            await conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Commit pending writes, stop checkpointing and close the connections."""
        try:
            await self._commits.close()
        finally:
            if self._checkpoints is not None:
                self._checkpoints.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._checkpoints
                self._checkpoints = None
            for conn in (self._checkpointer, self._reader, self._writer):
                if conn is not None:
                    await conn.close()
            self._checkpointer = self._reader = self._writer = None

    def on_new_work(self, callback: Callable[[], None]) -> None:
        """SQLite cannot signal other processes: the dispatcher polls instead."""

    async def _migrate(self) -> None:
        db = self._db
        await db.execute(
            "CREATE TABLE IF NOT EXISTS tasks_schema_migrations"
            " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        for migration in load_migrations("sqlite"):
            await db.execute("BEGIN IMMEDIATE")
            try:
                rows = await db.execute_fetchall(
                    "SELECT 1 FROM tasks_schema_migrations WHERE version = ?",
                    (migration.version,),
                )
                if not list(rows):
                    for statement in split_sqlite_statements(migration.sql):
                        await db.execute(statement)
                    await db.execute(
                        "INSERT INTO tasks_schema_migrations VALUES (?, ?, ?)",
                        (migration.version, migration.name, time.time()),
                    )
                    log.info("applied migration %s to %s", migration.name, self.path)
                await db.execute("COMMIT")
            except BaseException:
                await db.execute("ROLLBACK")
                raise

    @property
    def _db(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise StoreUnavailableError(f"task database {self.path} is not open")
        return self._writer

    @property
    def _ro(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreUnavailableError(f"task database {self.path} is not open")
        return self._reader

    # -- writes (group-committed) -------------------------------------------

    async def insert(self, tasks: Sequence[NewTask], *, max_queued: int = 0) -> list[Inserted]:
        """Insert tasks; see :meth:`Store.insert`."""
        result: list[Inserted] = await self._write("insert", (list(tasks), max_queued))
        return result

    async def insert_in(
        self, connection: aiosqlite.Connection, tasks: Sequence[NewTask]
    ) -> list[Inserted]:
        """Insert within the caller's transaction; see :meth:`Store.insert_in`.

        ``connection`` must be an aiosqlite connection to this same database file.
        """
        try:
            return await _on_connection_thread(connection, _insert_all, list(tasks))
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot write task database {self.path}: {exc}") from exc

    async def claim(
        self,
        owner: str,
        queues: Sequence[str],
        limit: int | Callable[[], int],
        lease_seconds: float,
    ) -> list[TaskRecord]:
        """Claim due tasks; see :meth:`Store.claim`."""
        if not queues or (isinstance(limit, int) and limit <= 0):
            return []
        payload = claim_payload(owner, tuple(queues), limit, lease_seconds)
        result: list[TaskRecord] = await self._write("claim", payload)
        return result

    async def finish(self, changes: Sequence[Finish]) -> list[bool]:
        """Apply end-of-run changes; see :meth:`Store.finish`."""
        result: list[bool] = await self._write("finish", list(changes))
        return result

    async def set_progress(self, task_id: str, owner: str, progress: Progress) -> None:
        """Record progress; see :meth:`Store.set_progress`."""
        await self._write("progress", (task_id, owner, progress))

    async def renew_leases(
        self, owner: str, task_ids: Sequence[str], lease_seconds: float
    ) -> set[str]:
        """Extend leases; see :meth:`Store.renew_leases`."""
        ids = list(task_ids)
        if not ids:
            return set()

        def renew(conn: sqlite3.Connection) -> set[str]:
            kept: set[str] = set()
            expires = time.time() + lease_seconds
            for chunk in _chunks(ids):
                rows = conn.execute(
                    f"UPDATE tasks SET lease_expires_at = ? WHERE id IN ({_marks(chunk)})"
                    " AND state IN ('running', 'cancelling') AND lease_owner = ? RETURNING id",
                    (expires, *chunk, owner),
                ).fetchall()
                kept.update(row[0] for row in rows)
            return set(ids) - kept

        lost: set[str] = await self._write("call", renew)
        return lost

    async def release(self, owner: str, task_ids: Sequence[str]) -> int:
        """Requeue tasks and refund their attempt; see :meth:`Store.release`."""
        ids = list(task_ids)
        if not ids:
            return 0

        def release(conn: sqlite3.Connection) -> int:
            count = 0
            for chunk in _chunks(ids):
                rows = conn.execute(
                    f"{_RELEASE} WHERE id IN ({_marks(chunk)})"
                    " AND state IN ('running', 'cancelling') AND lease_owner = ? RETURNING id",
                    (time.time(), *chunk, owner),
                ).fetchall()
                count += len(rows)
            return count

        released: int = await self._write("call", release)
        return released

    async def reclaim_expired(self, error_message: str) -> Reclaimed:
        """Recover tasks of dead owners; see :meth:`Store.reclaim_expired`."""

        def reclaim(conn: sqlite3.Connection) -> Reclaimed:
            now = time.time()
            failed = conn.execute(
                "UPDATE tasks SET state = 'failed', finished_at = ?, lease_owner = NULL,"
                " lease_expires_at = NULL, error_type = 'WorkerLostError', error_message = ?,"
                " error_traceback = NULL, version = version + 1"
                " WHERE state = 'running' AND lease_expires_at < ? AND attempts >= max_attempts"
                " RETURNING id",
                (now, error_message, now),
            ).fetchall()
            requeued = conn.execute(
                "UPDATE tasks SET state = 'queued', started_at = NULL, lease_owner = NULL,"
                " lease_expires_at = NULL, run_at = ?, version = version + 1"
                " WHERE state = 'running' AND lease_expires_at < ? RETURNING id",
                (now, now),
            ).fetchall()
            cancelled = conn.execute(
                "UPDATE tasks SET state = 'cancelled', finished_at = ?, lease_owner = NULL,"
                " lease_expires_at = NULL, version = version + 1"
                " WHERE state = 'cancelling' AND lease_expires_at < ? RETURNING id",
                (now, now),
            ).fetchall()
            return Reclaimed(
                [r[0] for r in requeued], [r[0] for r in failed], [r[0] for r in cancelled]
            )

        result: Reclaimed = await self._write("call", reclaim)
        return result

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel a task; see :meth:`Store.cancel`."""

        def cancel(conn: sqlite3.Connection) -> TaskRecord | None:
            conn.execute(_CANCEL, (time.time(), task_id))
            return _select_one(conn, task_id)

        result: TaskRecord | None = await self._write("call", cancel)
        return result

    async def retry(self, task_id: str) -> TaskRecord | None:
        """Requeue a failed or cancelled task; see :meth:`Store.retry`."""

        def retry(conn: sqlite3.Connection) -> TaskRecord | None:
            conn.execute(
                "UPDATE tasks SET state = 'queued', attempts = 0, run_at = ?, started_at = NULL,"
                " finished_at = NULL, result = NULL, error_type = NULL, error_message = NULL,"
                " error_traceback = NULL, progress_current = NULL, progress_total = NULL,"
                " progress_message = NULL, version = version + 1"
                " WHERE id = ? AND state IN ('failed', 'cancelled')",
                (time.time(), task_id),
            )
            return _select_one(conn, task_id)

        result: TaskRecord | None = await self._write("call", retry)
        return result

    async def purge_finished(self, finished_before: float, limit: int) -> int:
        """Delete old finished tasks; see :meth:`Store.purge_finished`."""

        if limit <= 0:
            return 0

        def purge(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE state IN"
                " ('succeeded', 'failed', 'cancelled') AND finished_at < ? LIMIT ?) RETURNING id",
                (finished_before, limit),
            ).fetchall()
            return len(rows)

        purged: int = await self._write("call", purge)
        return purged

    async def _write(self, kind: str, payload: Any) -> Any:
        try:
            return await self._commits.submit(kind, payload)
        except ClosedError as exc:
            raise StoreUnavailableError(f"task database {self.path} is closed") from exc

    async def _run_batch(self, batch: Sequence[WriteRequest]) -> list[Any]:
        for attempt in range(_BUSY_RETRIES):
            try:
                results = await self._transaction(batch)
                return [self._rejected(r) if isinstance(r, RequestFailed) else r for r in results]
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if busy and attempt + 1 < _BUSY_RETRIES:
                    log.warning("task database busy, retrying: %s", exc)
                    continue
                if busy:
                    raise StoreUnavailableError(
                        f"cannot write task database {self.path}: other writers held it for"
                        f" {_BUSY_RETRIES} x {self.busy_timeout:g} s; try again later"
                    ) from exc
                raise StoreUnavailableError(
                    f"cannot write task database {self.path}: {exc}"
                ) from exc
            except Exception as exc:
                if _request_error(exc):  # a batch of one request: the error is its own
                    raise self._rejected(RequestFailed(exc)).error  # noqa: B904
                raise StoreUnavailableError(
                    f"cannot write task database {self.path}: {exc}"
                ) from exc
        raise AssertionError("unreachable")

    def _rejected(self, failed: RequestFailed) -> RequestFailed:
        """A request's own failure as the caller sees it (the store's errors pass as they are)."""
        error = failed.error
        if isinstance(error, TasksError):
            return failed
        rejected = WriteRejectedError(f"task database {self.path} refused the write: {error}")
        rejected.__cause__ = error
        return RequestFailed(rejected)

    async def _transaction(self, batch: Sequence[WriteRequest]) -> list[Any]:
        """Run one batch in one transaction, in one round trip to the writer's thread.

        The whole transaction (``BEGIN IMMEDIATE``, every statement, ``COMMIT``)
        is one call on the writer connection's aiosqlite thread: each round
        trip between the event loop and that thread waits for the OS to
        schedule the other side, and under load for a turn of the busy loop.
        """
        db = self._db
        results = await _on_connection_thread(db, _run_transaction, batch, self.check_files)
        self._commit_count += 1
        return results

    def check_files(self) -> None:
        """Raise :class:`StoreUnavailableError` if the database file was deleted or replaced.

        SQLite keeps writing to the file it opened, even after that file was
        deleted or renamed (or its ``-wal`` file deleted): commits would then
        go to a file nobody will ever open again, and tasks reported as
        accepted would be gone after a restart. Each transaction checks that
        the paths still name the files opened (same device and inode) before
        it writes; once they do not, every write and read fails, with one
        critical log line, until the process is restarted.
        """
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

    # -- reads ---------------------------------------------------------------

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self.check_files()  # a read of a deleted file would answer for tasks that are gone
        try:
            return list(await self._ro.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot read task database {self.path}: {exc}") from exc

    async def get(self, task_id: str) -> TaskRecord | None:
        """One task by id; see :meth:`Store.get`."""
        rows = await self._read(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", (task_id,))
        return record_from_row(rows[0]) if rows else None

    async def get_many(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """Several tasks by id; see :meth:`Store.get_many`."""
        records: list[TaskRecord] = []
        for chunk in _chunks(list(task_ids)):
            rows = await self._read(
                f"SELECT {COLUMNS} FROM tasks WHERE id IN ({_marks(chunk)})", chunk
            )
            records += [record_from_row(row) for row in rows]
        return records

    # SQLite 3.43 added octet_length(); the cast reads the UTF-8 bytes of the text as is.
    _summary_columns = summary_columns("length(CAST({} AS BLOB))")

    async def _select(
        self,
        columns: str,
        *,
        state: State | None = None,
        name: str | None = None,
        cursor: str | None = None,
        task_id: str | None = None,
        limit: int = 1,
    ) -> Sequence[Any]:
        """Rows for :class:`~tasks.store.listing.Listings`, newest first."""
        where, params = [], []
        for condition, value in (
            ("state = ?", None if state is None else state.value),
            ("name = ?", name),
            ("id < ?", cursor),
            ("id = ?", task_id),
        ):
            if value is not None:
                where.append(condition)
                params.append(value)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return await self._read(
            f"SELECT {columns} FROM tasks {clause} ORDER BY id DESC LIMIT ?", [*params, limit]
        )

    async def count_by_state(self) -> dict[State, int]:
        """Counts per state; see :meth:`Store.count_by_state`."""
        return await shared_rows.count_by_state(self._read)

    async def count_by_name(self) -> dict[str, dict[State, int]]:
        """Counts per name and state; see :meth:`Store.count_by_name`."""
        return await shared_rows.count_by_name(self._read)

    async def next_run_at(self, queues: Sequence[str], after: float) -> float | None:
        """The next due time; see :meth:`Store.next_run_at`."""
        rows = await self._read(
            "SELECT MIN(run_at) FROM tasks WHERE state = 'queued'"
            f" AND queue IN ({_marks(queues)}) AND run_at > ?",
            [*queues, after],
        )
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    async def cancel_requests(self, owner: str) -> builtins.list[str]:
        """Tasks asked to stop; see :meth:`Store.cancel_requests`."""
        rows = await self._read(
            "SELECT id FROM tasks WHERE state = 'cancelling' AND lease_owner = ?", (owner,)
        )
        return [row[0] for row in rows]

    async def count_queued(self) -> int:
        """Backlog size; see :meth:`Store.count_queued`."""
        return await shared_rows.count_queued(self._read)


def _insert_row(task: NewTask) -> tuple[Any, ...]:
    return (
        task.id,
        task.name,
        task.queue,
        task.args_json,
        task.kwargs_json,
        task.priority,
        task.max_attempts,
        task.run_at,
        task.created_at,
        task.idempotency_key,
    )


def _on_connection_thread(
    db: aiosqlite.Connection, fn: Callable[..., _T], *args: Any
) -> Awaitable[_T]:
    """Run ``fn(connection, *args)`` on ``db``'s own thread, in order with its other calls.

    aiosqlite runs every call of a connection on that connection's thread;
    ``Connection._execute`` is how its own methods queue one there. It has no
    public equivalent, so the supported aiosqlite versions are pinned in
    ``pyproject.toml`` and the store's tests fail at once if it changes.
    """
    return db._execute(fn, db._conn, *args)  # type: ignore[no-untyped-call]


def _run_transaction(
    conn: sqlite3.Connection, batch: Sequence[WriteRequest], check_files: Callable[[], None]
) -> list[Any]:
    """One batch as one ``BEGIN IMMEDIATE`` transaction.

    The batch's clock (leases, ``started_at``, ``finished_at``) is read once
    the write lock is held: ``BEGIN IMMEDIATE`` may wait seconds for another
    writer, and a lease stamped before that wait would already be running out.

    The requests are first applied together. If one of them fails by itself
    (:func:`_request_error`), the batch is rolled back and applied again one
    request at a time, each in a savepoint: the failing requests get
    :class:`RequestFailed`, the others commit. Any other error fails the
    whole batch, as does ``check_files`` raising (the file is not the one opened).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        check_files()
        try:
            results = _apply(conn, batch, time.time())
        except Exception as exc:
            if len(batch) == 1 or not _request_error(exc):
                raise
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            results = _apply_each(conn, batch, time.time())
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return results


def _apply_each(conn: sqlite3.Connection, batch: Sequence[WriteRequest], now: float) -> list[Any]:
    """Apply requests one at a time, each in a savepoint; see :func:`_run_transaction`."""
    results: list[Any] = []
    for request in batch:
        conn.execute("SAVEPOINT request")
        try:
            [result] = _apply(conn, [request], now)
        except Exception as exc:
            if not _request_error(exc):
                raise
            conn.execute("ROLLBACK TO request")
            result = RequestFailed(exc)
        conn.execute("RELEASE request")
        results.append(result)
    return results


def _request_error(exc: BaseException) -> bool:
    """Whether ``exc`` is about one request's values, not the database as a whole.

    A refused value (constraint, binding, encoding, overflow) or a store
    error raised for one request is; a locked, full, failing or corrupt
    database (``OperationalError`` and the other database-wide errors) is not.
    """
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.InterfaceError):
        return True
    return isinstance(exc, Exception) and not isinstance(exc, sqlite3.Error)


def _apply(conn: sqlite3.Connection, batch: Sequence[WriteRequest], now: float) -> list[Any]:
    """Apply a batch: inserts, then finishes and progress, then other calls, then claims.

    Claims come last so that tasks inserted and slots freed in this very
    transaction are seen by them.
    """
    results: list[Any] = [None] * len(batch)
    by_kind: dict[str, list[int]] = {}
    for index, request in enumerate(batch):
        by_kind.setdefault(request.kind, []).append(index)
    if "insert" in by_kind:
        _apply_inserts(conn, batch, by_kind["insert"], results)
    if "finish" in by_kind:
        _apply_finishes(conn, batch, by_kind["finish"], results, now)
    if "progress" in by_kind:
        conn.executemany(
            "UPDATE tasks SET progress_current = ?, progress_total = ?, progress_message = ?,"
            " version = version + 1"
            " WHERE id = ? AND state IN ('running', 'cancelling') AND lease_owner = ?",
            [
                (_number(p.current), _number(p.total), _text(p.message), task_id, owner)
                for task_id, owner, p in (batch[i].payload for i in by_kind["progress"])
            ],
        )
    for index in by_kind.get("call", ()):
        results[index] = batch[index].payload(conn)
    for index in by_kind.get("claim", ()):
        results[index] = _claim(conn, *batch[index].payload, now=now)
    return results


def _apply_inserts(
    conn: sqlite3.Connection, batch: Sequence[WriteRequest], indexes: list[int], results: list[Any]
) -> None:
    """Insert each request's tasks; one past its backlog bound fails alone.

    The bound (``max_queued``, 0 for none) is checked against a count made in
    this transaction, which holds the write lock: no other writer can slip
    in between the count and the insert.
    """
    queued: int | None = None
    for index in indexes:
        tasks, bound = batch[index].payload
        if bound:
            if queued is None:
                queued = conn.execute(_COUNT_QUEUED).fetchone()[0]
            if queued + len(tasks) > bound:
                results[index] = RequestFailed(queue_full(queued, bound))
                continue
        answers = _insert_all(conn, tasks)
        if queued is not None:
            queued += sum(answer.created for answer in answers)
        results[index] = answers


def _insert_all(conn: sqlite3.Connection, tasks: Sequence[NewTask]) -> list[Inserted]:
    answers: list[Inserted] = []
    plain: list[tuple[Any, ...]] = []
    for task in tasks:
        row = _insert_row(task)
        if task.idempotency_key is None:
            plain.append(row)
            answers.append(Inserted(task.id, True))
            continue
        # Keyed rows go one by one, in order, so that a key repeated within the
        # batch finds the row its first use inserted.
        if plain:
            conn.executemany(_INSERT, plain)
            plain = []
        if conn.execute(_INSERT_KEYED, row).fetchall():
            answers.append(Inserted(task.id, True))
        else:
            [(existing,)] = conn.execute(_SELECT_KEY, (task.idempotency_key,)).fetchall()
            answers.append(Inserted(existing, False))
    if plain:
        conn.executemany(_INSERT, plain)
    return answers


def _apply_finishes(
    conn: sqlite3.Connection,
    batch: Sequence[WriteRequest],
    indexes: list[int],
    results: list[Any],
    now: float,
) -> None:
    changes: list[Finish] = []
    seen: set[str] = set()
    for index in indexes:
        for change in batch[index].payload:
            if change.task_id not in seen:  # a second outcome of one run never applies
                seen.add(change.task_id)
                changes.append(change)
    applied: set[str] = set()
    for chunk in _chunks(changes):
        params: list[Any] = [now]  # now: the first "?"
        for change in chunk:
            error_type, error_message, error_tb = _dumps_error(change.error)
            progress = change.progress
            params += (
                change.task_id,
                change.state.value,
                change.result_json,
                error_type,
                error_message,
                error_tb,
                change.run_at,
                1 if change.refund else 0,
                None if progress is None else _number(progress.current),
                None if progress is None else _number(progress.total),
                None if progress is None else _text(progress.message),
                change.owner,
            )
        applied.update(row[0] for row in conn.execute(_finish_sql(len(chunk)), params))
    for index in indexes:
        answers = []
        for change in batch[index].payload:
            answers.append(change.task_id in applied)
            applied.discard(change.task_id)  # only its first outcome counts
        results[index] = answers


def _claim(
    conn: sqlite3.Connection,
    owner: str,
    queues: tuple[str, ...],
    limit: int,
    lease_seconds: float,
    *,
    now: float,
) -> list[TaskRecord]:
    if limit <= 0:
        return []
    rows = conn.execute(
        "UPDATE tasks SET state = 'running', attempts = attempts + 1, started_at = ?,"
        " lease_owner = ?, lease_expires_at = ?, version = version + 1"
        " WHERE id IN (SELECT id FROM tasks WHERE state = 'queued' AND run_at <= ?"
        f" AND queue IN ({_marks(queues)}) ORDER BY priority DESC, run_at, id LIMIT ?)"
        f" RETURNING {COLUMNS}",
        (now, owner, now + lease_seconds, now, *queues, limit),
    ).fetchall()
    records = [record_from_row(row) for row in rows]
    records.sort(key=lambda r: (-r.priority, r.run_at, r.id))
    return records


def _select_one(conn: sqlite3.Connection, task_id: str) -> TaskRecord | None:
    rows = conn.execute(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", (task_id,)).fetchall()
    return record_from_row(rows[0]) if rows else None


@functools.lru_cache(maxsize=64)
def _finish_sql(rows: int) -> str:
    return _FINISH.format(rows=", ".join([_FINISH_ROW] * rows))


async def _checkpoint(db: aiosqlite.Connection, mode: str, busy_ms: int) -> int:
    """Run a WAL checkpoint waiting up to ``busy_ms`` for others; the log's size in pages."""
    await db.execute(f"PRAGMA busy_timeout={busy_ms}")
    [(_, log_pages, _)] = list(await db.execute_fetchall(f"PRAGMA wal_checkpoint({mode})"))
    return int(log_pages)


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None if there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def _check_directory(path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise StoreUnavailableError(
            f"cannot open task database {path}: directory {parent} does not exist"
        )


def _os_cause(path: str) -> str | None:
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


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _chunks(values: Sequence[_T]) -> list[Sequence[_T]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]
