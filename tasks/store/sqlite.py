"""The SQLite backend, on aiosqlite: one file, WAL mode, group-committed writes.

Two connections: a writer that runs every state change through
:class:`~tasks.store.batching.GroupCommit` in ``BEGIN IMMEDIATE`` transactions
(a deferred transaction that reads, then writes, fails at once with
``database is locked`` when another process wrote in between), and a reader for
queries, which WAL lets run while a write is in progress. Several processes
may share the file; the busy timeout plus a bounded retry absorb contention.
"""

from __future__ import annotations

import json
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
from tasks.store.base import Inserted, Page, Reclaimed
from tasks.store.batching import GroupCommit, WriteRequest
from tasks.store.migrations import load_migrations, split_sqlite_statements

log = logging.getLogger("tasks.store")

COLUMNS = (
    "id, name, queue, state, args, kwargs, priority, attempts, max_attempts, run_at,"
    " created_at, started_at, finished_at, progress_current, progress_total,"
    " progress_message, result, error_type, error_message, error_traceback,"
    " idempotency_key, lease_owner, lease_expires_at, version"
)
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
_CHUNK = 500
_T = TypeVar("_T")
_BUSY_RETRIES = 3


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


def _dumps_error(error: ErrorInfo | None) -> tuple[str | None, str | None, str | None]:
    if error is None:
        return None, None, None
    return error.type, error.message, error.traceback


def record_from_row(row: Sequence[Any]) -> TaskRecord:
    """Build a :class:`TaskRecord` from a row selected with :data:`COLUMNS`."""
    error = None
    if row[17] is not None:
        error = ErrorInfo(row[17], row[18] or "", row[19])
    progress = Progress(row[13] or 0, row[14], row[15])
    current = progress.current
    if isinstance(current, float) and current.is_integer():
        progress = Progress(int(current), progress.total, progress.message)
    total = progress.total
    if isinstance(total, float) and total.is_integer():
        progress = Progress(progress.current, int(total), progress.message)
    return TaskRecord(
        id=row[0],
        name=row[1],
        queue=row[2],
        state=State(row[3]),
        args=json.loads(row[4]),
        kwargs=json.loads(row[5]),
        priority=row[6],
        attempts=row[7],
        max_attempts=row[8],
        run_at=row[9],
        created_at=row[10],
        started_at=row[11],
        finished_at=row[12],
        progress=progress,
        result=None if row[16] is None else json.loads(row[16]),
        error=error,
        idempotency_key=row[20],
        lease_owner=row[21],
        lease_expires_at=row[22],
        version=row[23],
    )


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
        self._commits = GroupCommit(self._run_batch)

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        """Open both connections, switch to WAL and apply migrations."""
        _check_directory(self.path)
        try:
            self._writer = await self._connect()
            await self._writer.execute("PRAGMA journal_mode=WAL")
            await self._migrate()
            self._reader = await self._connect()
            await self._reader.execute("PRAGMA query_only=ON")
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise StoreUnavailableError(f"cannot open task database {self.path}: {exc}") from exc
        self._commits.start()

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        await conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    async def close(self) -> None:
        """Commit pending writes and close both connections."""
        try:
            await self._commits.close()
        finally:
            for conn in (self._reader, self._writer):
                if conn is not None:
                    await conn.close()
            self._reader = self._writer = None

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
                raise StoreUnavailableError(
                    f"cannot write task database {self.path}: {exc}"
                ) from exc
            except sqlite3.Error as exc:
                raise StoreUnavailableError(
                    f"cannot write task database {self.path}: {exc}"
                ) from exc
        raise AssertionError("unreachable")

    async def _transaction(self, batch: Sequence[WriteRequest]) -> list[Any]:
        db = self._db
        await db.execute("BEGIN IMMEDIATE")
        try:
            results = await self._apply(db, batch)
            await db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            raise
        return results

    async def _apply(self, db: aiosqlite.Connection, batch: Sequence[WriteRequest]) -> list[Any]:
        """Run one batch: inserts, then finishes and progress, then other calls, then claims.

        Claims come last so that tasks inserted and slots freed in this very
        transaction are seen by them.
        """
        results: list[Any] = [None] * len(batch)
        by_kind: dict[str, list[int]] = {}
        for index, request in enumerate(batch):
            by_kind.setdefault(request.kind, []).append(index)
        now = time.time()
        if "insert" in by_kind:
            await self._apply_inserts(db, batch, by_kind["insert"], results)
        if "finish" in by_kind:
            await self._apply_finishes(db, batch, by_kind["finish"], results, now)
        if "progress" in by_kind:
            await db.executemany(
                "UPDATE tasks SET progress_current = ?, progress_total = ?, progress_message = ?,"
                " version = version + 1 WHERE id = ? AND state = 'running' AND lease_owner = ?",
                [
                    (p.current, p.total, p.message, task_id, owner)
                    for task_id, owner, p in (batch[i].payload for i in by_kind["progress"])
                ],
            )
        for index in by_kind.get("call", ()):
            results[index] = await batch[index].payload(db)
        for index in by_kind.get("claim", ()):
            results[index] = await self._apply_claim(db, *batch[index].payload, now=now)
        return results

    async def _apply_inserts(
        self,
        db: aiosqlite.Connection,
        batch: Sequence[WriteRequest],
        indexes: list[int],
        results: list[Any],
    ) -> None:
        plain: list[tuple[Any, ...]] = []
        for index in indexes:
            tasks: list[NewTask] = batch[index].payload
            answers: list[Inserted] = []
            for task in tasks:
                row = _insert_row(task)
                if task.idempotency_key is None:
                    plain.append(row)
                    answers.append(Inserted(task.id, True))
                else:
                    answers.append(await self._insert_keyed(db, row, task.idempotency_key))
            results[index] = answers
        if plain:
            await db.executemany(_INSERT, plain)

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

    async def _apply_finishes(
        self,
        db: aiosqlite.Connection,
        batch: Sequence[WriteRequest],
        indexes: list[int],
        results: list[Any],
        now: float,
    ) -> None:
        changes: list[Finish] = [c for i in indexes for c in batch[i].payload]
        applied: set[str] = set()
        for chunk in _chunks(changes):
            params: list[Any] = []
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
                    None if progress is None else progress.current,
                    None if progress is None else progress.total,
                    None if progress is None else progress.message,
                    change.owner,
                )
            sql = _FINISH.format(rows=", ".join([_FINISH_ROW] * len(chunk)))
            rows = await db.execute_fetchall(sql, [now, *params])  # now: first "?"
            applied.update(row[0] for row in rows)
        for index in indexes:
            results[index] = [c.task_id in applied for c in batch[index].payload]

    async def _apply_claim(
        self,
        db: aiosqlite.Connection,
        owner: str,
        queues: tuple[str, ...],
        limit: int,
        lease_seconds: float,
        *,
        now: float,
    ) -> list[TaskRecord]:
        rows = await db.execute_fetchall(
            "UPDATE tasks SET state = 'running', attempts = attempts + 1, started_at = ?,"
            " lease_owner = ?, lease_expires_at = ?, version = version + 1"
            " WHERE id IN (SELECT id FROM tasks WHERE state = 'queued' AND run_at <= ?"
            f" AND queue IN ({_marks(queues)}) ORDER BY priority DESC, run_at, id LIMIT ?)"
            f" RETURNING {COLUMNS}",
            (now, owner, now + lease_seconds, now, *queues, limit),
        )
        records = [record_from_row(row) for row in rows]
        records.sort(key=lambda r: (-r.priority, r.run_at, r.id))
        return records

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
        counts = dict.fromkeys(State, 0)
        for state, count in await self._read("SELECT state, COUNT(*) FROM tasks GROUP BY state"):
            counts[State(state)] = count
        return counts

    async def count_by_name(self) -> dict[str, dict[State, int]]:
        """Counts per name and state; see :meth:`Store.count_by_name`."""
        counts: dict[str, dict[State, int]] = {}
        rows = await self._read("SELECT name, state, COUNT(*) FROM tasks GROUP BY name, state")
        for name, state, count in rows:
            counts.setdefault(name, dict.fromkeys(State, 0))[State(state)] = count
        return counts

    async def count_queued(self) -> int:
        """Backlog size; see :meth:`Store.count_queued`."""
        rows = await self._read("SELECT COUNT(*) FROM tasks WHERE state = 'queued'")
        return int(rows[0][0])


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


def _check_directory(path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise StoreUnavailableError(
            f"cannot open task database {path}: directory {parent} does not exist"
        )


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _chunks(values: Sequence[_T]) -> list[Sequence[_T]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]
