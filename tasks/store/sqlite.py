"""The SQLite backend, on aiosqlite: one file, WAL mode, group-committed writes.

Two connections: a writer that runs every state change through
:class:`~tasks.store.batching.GroupCommit` in ``BEGIN IMMEDIATE`` transactions
(a deferred transaction that reads, then writes, fails at once with
``database is locked`` when another process wrote in between), and a reader for
queries, which WAL lets run while a write is in progress. Several processes
may share the file; the busy timeout plus a bounded retry absorb contention.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiosqlite

from tasks.errors import StoreUnavailableError
from tasks.model import ErrorInfo, Finish, NewTask, Progress, State, TaskRecord
from tasks.store import rows as shared_rows
from tasks.store.base import Inserted, Page, Reclaimed
from tasks.store.batching import GroupCommit, WriteRequest
from tasks.store.migrations import load_migrations, split_sqlite_statements
from tasks.store.rows import COLUMNS, record_from_row

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
WHERE tasks.id = v.column1 AND tasks.state = 'running' AND tasks.lease_owner = v.column12
RETURNING tasks.id
"""
_INSERT_KEYED = _INSERT + " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
_SELECT_KEY = "SELECT id FROM tasks WHERE idempotency_key = ?"
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


class SQLiteStore:
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
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        await conn.execute(f"PRAGMA synchronous={self.synchronous}")
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

    async def insert(self, tasks: Sequence[NewTask]) -> list[Inserted]:
        """Insert tasks; see :meth:`Store.insert`."""
        result: list[Inserted] = await self._write("insert", list(tasks))
        return result

    async def insert_in(
        self, connection: aiosqlite.Connection, tasks: Sequence[NewTask]
    ) -> list[Inserted]:
        """Insert within the caller's transaction; see :meth:`Store.insert_in`.

        ``connection`` must be an aiosqlite connection to this same database file.
        """
        try:
            answers: list[Inserted] = []
            for task in tasks:
                row = _insert_row(task)
                if task.idempotency_key is None:
                    await connection.execute(_INSERT, row)
                    answers.append(Inserted(task.id, True))
                else:
                    answers.append(await self._insert_keyed(connection, row, task.idempotency_key))
            return answers
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot write task database {self.path}: {exc}") from exc

    async def claim(
        self, owner: str, queues: Sequence[str], limit: int, lease_seconds: float
    ) -> list[TaskRecord]:
        """Claim due tasks; see :meth:`Store.claim`."""
        if limit <= 0 or not queues:
            return []
        result: list[TaskRecord] = await self._write(
            "claim", (owner, tuple(queues), limit, lease_seconds)
        )
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

        async def renew(db: aiosqlite.Connection) -> set[str]:
            kept: set[str] = set()
            expires = time.time() + lease_seconds
            for chunk in _chunks(ids):
                rows = await db.execute_fetchall(
                    f"UPDATE tasks SET lease_expires_at = ? WHERE id IN ({_marks(chunk)})"
                    " AND state = 'running' AND lease_owner = ? RETURNING id",
                    (expires, *chunk, owner),
                )
                kept.update(row[0] for row in rows)
            return set(ids) - kept

        lost: set[str] = await self._write("call", renew)
        return lost

    async def release(self, owner: str, task_ids: Sequence[str]) -> int:
        """Requeue tasks and refund their attempt; see :meth:`Store.release`."""
        ids = list(task_ids)
        if not ids:
            return 0

        async def release(db: aiosqlite.Connection) -> int:
            count = 0
            for chunk in _chunks(ids):
                rows = await db.execute_fetchall(
                    "UPDATE tasks SET state = 'queued', attempts = MAX(attempts - 1, 0),"
                    " started_at = NULL, lease_owner = NULL, lease_expires_at = NULL,"
                    f" version = version + 1 WHERE id IN ({_marks(chunk)})"
                    " AND state = 'running' AND lease_owner = ? RETURNING id",
                    (*chunk, owner),
                )
                count += len(list(rows))
            return count

        released: int = await self._write("call", release)
        return released

    async def reclaim_expired(self, error_message: str) -> Reclaimed:
        """Recover tasks of dead owners; see :meth:`Store.reclaim_expired`."""

        async def reclaim(db: aiosqlite.Connection) -> Reclaimed:
            now = time.time()
            failed = await db.execute_fetchall(
                "UPDATE tasks SET state = 'failed', finished_at = ?, lease_owner = NULL,"
                " lease_expires_at = NULL, error_type = 'WorkerLostError', error_message = ?,"
                " error_traceback = NULL, version = version + 1"
                " WHERE state = 'running' AND lease_expires_at < ? AND attempts >= max_attempts"
                " RETURNING id",
                (now, error_message, now),
            )
            requeued = await db.execute_fetchall(
                "UPDATE tasks SET state = 'queued', started_at = NULL, lease_owner = NULL,"
                " lease_expires_at = NULL, run_at = ?, version = version + 1"
                " WHERE state = 'running' AND lease_expires_at < ? RETURNING id",
                (now, now),
            )
            return Reclaimed([r[0] for r in requeued], [r[0] for r in failed])

        result: Reclaimed = await self._write("call", reclaim)
        return result

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel a task; see :meth:`Store.cancel`."""

        async def cancel(db: aiosqlite.Connection) -> TaskRecord | None:
            await db.execute(
                "UPDATE tasks SET state = 'cancelled', finished_at = ?, lease_owner = NULL,"
                " lease_expires_at = NULL, version = version + 1"
                " WHERE id = ? AND state IN ('queued', 'running')",
                (time.time(), task_id),
            )
            return await self._select_one(db, task_id)

        result: TaskRecord | None = await self._write("call", cancel)
        return result

    async def retry(self, task_id: str) -> TaskRecord | None:
        """Requeue a failed or cancelled task; see :meth:`Store.retry`."""

        async def retry(db: aiosqlite.Connection) -> TaskRecord | None:
            await db.execute(
                "UPDATE tasks SET state = 'queued', attempts = 0, run_at = ?, started_at = NULL,"
                " finished_at = NULL, result = NULL, error_type = NULL, error_message = NULL,"
                " error_traceback = NULL, progress_current = NULL, progress_total = NULL,"
                " progress_message = NULL, version = version + 1"
                " WHERE id = ? AND state IN ('failed', 'cancelled')",
                (time.time(), task_id),
            )
            return await self._select_one(db, task_id)

        result: TaskRecord | None = await self._write("call", retry)
        return result

    async def purge_finished(self, finished_before: float, limit: int) -> int:
        """Delete old finished tasks; see :meth:`Store.purge_finished`."""

        if limit <= 0:
            return 0

        async def purge(db: aiosqlite.Connection) -> int:
            rows = await db.execute_fetchall(
                "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE state IN"
                " ('succeeded', 'failed', 'cancelled') AND finished_at < ? LIMIT ?) RETURNING id",
                (finished_before, limit),
            )
            return len(list(rows))

        purged: int = await self._write("call", purge)
        return purged

    async def _write(self, kind: str, payload: Any) -> Any:
        try:
            return await self._commits.submit(kind, payload)
        except RuntimeError as exc:
            raise StoreUnavailableError(f"task database {self.path} is closed") from exc

    async def _run_batch(self, batch: Sequence[WriteRequest]) -> list[Any]:
        for attempt in range(_BUSY_RETRIES):
            try:
                return await self._transaction(batch)
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
            except sqlite3.Error as exc:
                raise StoreUnavailableError(
                    f"cannot write task database {self.path}: {exc}"
                ) from exc
        raise AssertionError("unreachable")

    async def _transaction(self, batch: Sequence[WriteRequest]) -> list[Any]:
        """Run one batch in one transaction, in two round trips to the connection's thread.

        Every statement of the batch is queued at once behind ``BEGIN IMMEDIATE``
        (see :class:`_Pipeline`), then ``COMMIT`` once all of them succeeded.
        ``SAVEPOINT`` right after ``BEGIN`` keeps the queued statements inside a
        transaction even if ``BEGIN`` itself fails (busy), so nothing of a failed
        batch can commit on its own: it is all rolled back here.
        """
        db = self._db
        pipe = _Pipeline(db)
        pipe.run("BEGIN IMMEDIATE")
        pipe.run("SAVEPOINT tasks_batch")
        try:
            results = await self._apply(pipe, batch)
            await db.execute("COMMIT")
            self._commit_count += 1
        except BaseException:
            await pipe.settle()
            if db.in_transaction:
                await db.execute("ROLLBACK")
            raise
        return results

    async def _apply(self, pipe: _Pipeline, batch: Sequence[WriteRequest]) -> list[Any]:
        """Queue one batch: inserts, then finishes and progress, then other calls, then claims.

        Claims come last so that tasks inserted and slots freed in this very
        transaction are seen by them. Calls (rare: heartbeats, cancels, ...)
        await their own statements, so the queue is drained before them.
        """
        results: list[Any] = [None] * len(batch)
        by_kind: dict[str, list[int]] = {}
        for index, request in enumerate(batch):
            by_kind.setdefault(request.kind, []).append(index)
        now = time.time()
        answers: list[Callable[[], None]] = []
        if "insert" in by_kind:
            answers.append(self._queue_inserts(pipe, batch, by_kind["insert"], results))
        if "finish" in by_kind:
            answers.append(self._queue_finishes(pipe, batch, by_kind["finish"], results, now))
        if "progress" in by_kind:
            pipe.run_many(
                "UPDATE tasks SET progress_current = ?, progress_total = ?, progress_message = ?,"
                " version = version + 1 WHERE id = ? AND state = 'running' AND lease_owner = ?",
                [
                    (_number(p.current), _number(p.total), _text(p.message), task_id, owner)
                    for task_id, owner, p in (batch[i].payload for i in by_kind["progress"])
                ],
            )
        if "call" in by_kind:
            await pipe.wait()
            for index in by_kind["call"]:
                results[index] = await batch[index].payload(pipe.db)
        claims = [
            (index, self._queue_claim(pipe, *batch[index].payload, now=now))
            for index in by_kind.get("claim", ())
        ]
        await pipe.wait()
        for answer in answers:
            answer()
        for index, step in claims:
            records = [record_from_row(row) for row in step.result()]
            records.sort(key=lambda r: (-r.priority, r.run_at, r.id))
            results[index] = records
        return results

    def _queue_inserts(
        self,
        pipe: _Pipeline,
        batch: Sequence[WriteRequest],
        indexes: list[int],
        results: list[Any],
    ) -> Callable[[], None]:
        plain: list[tuple[Any, ...]] = []
        keyed: list[tuple[int, int, str, asyncio.Task[list[Any]], asyncio.Task[list[Any]]]] = []
        for index in indexes:
            tasks: list[NewTask] = batch[index].payload
            answers: list[Inserted] = []
            for task in tasks:
                row = _insert_row(task)
                answers.append(Inserted(task.id, True))
                if task.idempotency_key is None:
                    plain.append(row)
                else:
                    # Keyed rows go one by one, in order, so that a key repeated
                    # within the batch finds the row its first use inserted.
                    if plain:
                        pipe.run_many(_INSERT, plain)
                        plain = []
                    inserted = pipe.fetch(_INSERT_KEYED, row)
                    existing = pipe.fetch(_SELECT_KEY, (task.idempotency_key,))
                    keyed.append((index, len(answers) - 1, task.id, inserted, existing))
            results[index] = answers
        if plain:
            pipe.run_many(_INSERT, plain)

        def answer() -> None:
            for index, position, task_id, inserted, existing in keyed:
                if not inserted.result():
                    results[index][position] = Inserted(existing.result()[0][0], False)
                else:
                    results[index][position] = Inserted(task_id, True)

        return answer

    async def _insert_keyed(
        self, db: aiosqlite.Connection, row: tuple[Any, ...], key: str
    ) -> Inserted:
        rows = list(
            await db.execute_fetchall(
                _INSERT + " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id", row
            )
        )
        if rows:
            return Inserted(rows[0][0], True)
        existing = list(
            await db.execute_fetchall("SELECT id FROM tasks WHERE idempotency_key = ?", (key,))
        )
        return Inserted(existing[0][0], False)

    def _queue_finishes(
        self,
        pipe: _Pipeline,
        batch: Sequence[WriteRequest],
        indexes: list[int],
        results: list[Any],
        now: float,
    ) -> Callable[[], None]:
        changes: list[Finish] = []
        seen: set[str] = set()
        for index in indexes:
            for change in batch[index].payload:
                if change.task_id not in seen:  # a second outcome of one run never applies
                    seen.add(change.task_id)
                    changes.append(change)
        steps: list[asyncio.Task[list[Any]]] = []
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
            steps.append(pipe.fetch(_finish_sql(len(chunk)), params))

        def answer() -> None:
            applied = {row[0] for step in steps for row in step.result()}
            for index in indexes:
                answers = []
                for change in batch[index].payload:
                    answers.append(change.task_id in applied)
                    applied.discard(change.task_id)  # only its first outcome counts
                results[index] = answers

        return answer

    def _queue_claim(
        self,
        pipe: _Pipeline,
        owner: str,
        queues: tuple[str, ...],
        limit: int,
        lease_seconds: float,
        *,
        now: float,
    ) -> asyncio.Task[list[Any]]:
        return pipe.fetch(
            "UPDATE tasks SET state = 'running', attempts = attempts + 1, started_at = ?,"
            " lease_owner = ?, lease_expires_at = ?, version = version + 1"
            " WHERE id IN (SELECT id FROM tasks WHERE state = 'queued' AND run_at <= ?"
            f" AND queue IN ({_marks(queues)}) ORDER BY priority DESC, run_at, id LIMIT ?)"
            f" RETURNING {COLUMNS}",
            (now, owner, now + lease_seconds, now, *queues, limit),
        )

    # -- reads ---------------------------------------------------------------

    async def _select_one(self, db: aiosqlite.Connection, task_id: str) -> TaskRecord | None:
        rows = list(
            await db.execute_fetchall(f"SELECT {COLUMNS} FROM tasks WHERE id = ?", (task_id,))
        )
        return record_from_row(rows[0]) if rows else None

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
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

    async def list(
        self,
        *,
        state: State | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Tasks newest first; see :meth:`Store.list`."""
        where, params = [], []
        if state is not None:
            where.append("state = ?")
            params.append(state.value)
        if name is not None:
            where.append("name = ?")
            params.append(name)
        if cursor is not None:
            where.append("id < ?")
            params.append(cursor)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self._read(
            f"SELECT {COLUMNS} FROM tasks {clause} ORDER BY id DESC LIMIT ?", [*params, limit + 1]
        )
        records = [record_from_row(row) for row in rows[:limit]]
        next_cursor = records[-1].id if len(rows) > limit and records else None
        return Page(records, next_cursor)

    async def count_by_state(self) -> dict[State, int]:
        """Counts per state; see :meth:`Store.count_by_state`."""
        return await shared_rows.count_by_state(self._read)

    async def count_by_name(self) -> dict[str, dict[State, int]]:
        """Counts per name and state; see :meth:`Store.count_by_name`."""
        return await shared_rows.count_by_name(self._read)

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


class _Pipeline:
    """Statements queued to an aiosqlite connection's thread at once.

    aiosqlite runs each call on its own thread in the order it was queued, and
    each ``await`` of one is a round trip between the event loop and that
    thread; under load every round trip also waits for a turn of the busy loop.
    Queuing a batch's statements together makes them one round trip. Each step
    is a task started at once, so they reach the thread in order.
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self._steps: list[asyncio.Task[Any]] = []

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Queue a statement whose result is not needed."""
        self._steps.append(asyncio.create_task(_execute(self.db, sql, params)))

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Queue one statement run once per row of parameters."""
        self._steps.append(asyncio.create_task(_execute_many(self.db, sql, rows)))

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> asyncio.Task[list[Any]]:
        """Queue a statement; the returned task gives its rows once :meth:`wait` returned."""
        step = asyncio.create_task(_fetch(self.db, sql, params))
        self._steps.append(step)
        return step

    async def wait(self) -> None:
        """Wait for every queued statement; raise the first failure, in queue order."""
        steps = await self.settle()
        for step in steps:
            exc = step.exception()
            if exc is not None:
                raise exc

    async def settle(self) -> list[asyncio.Task[Any]]:
        """Wait until every queued statement has run, whatever the outcome."""
        steps, self._steps = self._steps, []
        if steps:
            await asyncio.wait(steps)
            for step in steps:  # mark every failure as seen
                if not step.cancelled():
                    step.exception()
        return steps


async def _execute(db: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> None:
    await db.execute(sql, params)


async def _execute_many(db: aiosqlite.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    await db.executemany(sql, rows)


async def _fetch(db: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    return list(await db.execute_fetchall(sql, params))


@functools.lru_cache(maxsize=64)
def _finish_sql(rows: int) -> str:
    return _FINISH.format(rows=", ".join([_FINISH_ROW] * rows))


async def _checkpoint(db: aiosqlite.Connection, mode: str, busy_ms: int) -> int:
    """Run a WAL checkpoint waiting up to ``busy_ms`` for others; the log's size in pages."""
    await db.execute(f"PRAGMA busy_timeout={busy_ms}")
    [(_, log_pages, _)] = list(await db.execute_fetchall(f"PRAGMA wal_checkpoint({mode})"))
    return int(log_pages)


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
