"""The SQLite store: its lifecycle, and each write as a request to group commit.

Two connections: a writer that runs every state change through
:class:`~tasks.store.batching.GroupCommit` in ``BEGIN IMMEDIATE``
transactions (:mod:`~tasks.store.sqlite.transaction`), and a reader for
queries (:mod:`~tasks.store.sqlite.reads`). A third connection checkpoints
the WAL (:mod:`~tasks.store.sqlite.checkpoints`). Small batches run on the
event loop's thread through a fourth, lock-or-fail connection, when the lock
is free at once. The methods here only check their arguments and submit;
the SQL lives in the modules they submit to. A transaction that finds the
file locked by another process is retried a bounded number of times. After
a commit that made work due, other processes are woken
(:mod:`~tasks.store.sqlite.wakeups`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from tasks.errors import StoreUnavailableError
from tasks.model import TERMINAL_STATES, Finish, NewTask, Progress, State, TaskRecord
from tasks.store.base import Claimed, Inserted, terminal_values
from tasks.store.batching import (
    ClosedError,
    GroupCommit,
    RequestFailed,
    WriteRequest,
    claim_payload,
    rejected,
)
from tasks.store.schedule_store import ScheduleStore
from tasks.store.sqlite import connection, control, schedules, workflows, writes
from tasks.store.sqlite.checkpoints import checkpoint_loop
from tasks.store.sqlite.connection import FileIdentity, busy, on_connection_thread, sqlite_path
from tasks.store.sqlite.reads import SQLiteReads
from tasks.store.sqlite.transaction import (
    inline_size,
    request_error,
    run_transaction,
    work_for_others,
)
from tasks.store.sqlite.wakeups import WakeSockets
from tasks.store.sqlite.workers import SQLiteWorkers
from tasks.store.workflow_store import WorkflowStore

log = logging.getLogger("tasks.store")

_BUSY_RETRIES = 3
_WAKING = frozenset(
    {"release", "reclaim_expired", "reclaim_owners", "retry", "fire", "insert_workflow"}
)
"""Names of the ``call`` functions that may make work due for other processes
(requeues, retries, a schedule's tasks): by name, wherever they live."""


@dataclass(frozen=True, slots=True)
class _Call:
    """A ``call`` request's payload: ``fn(connection, *args)``; ``wakes`` other processes."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    wakes: bool

    def __call__(self, conn: sqlite3.Connection) -> Any:
        return self.fn(conn, *self.args)


class SQLiteStore(ScheduleStore, WorkflowStore, SQLiteWorkers, SQLiteReads):
    """Tasks in one SQLite file. See :class:`tasks.store.base.Store` for the contract."""

    _schedule_sql = schedules
    _workflow_sql = workflows

    def __init__(self, url: str, *, busy_timeout: float = 5.0, synchronous: str = "NORMAL") -> None:
        self.url = url
        self._limit_wait: Callable[[float], None] | None = None
        self.path = sqlite_path(url)
        self.busy_timeout = busy_timeout
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"invalid SQLite synchronous setting: {synchronous!r}")
        self.synchronous = synchronous.upper()
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._checkpointer: aiosqlite.Connection | None = None
        self._inline: sqlite3.Connection | None = None
        """Small batches, on the loop's thread (not with synchronous FULL: an fsync there)."""
        self._checkpoints: asyncio.Task[None] | None = None
        self._commit_count = 0
        """Transactions committed by this store (the checkpointer compares it)."""
        self._commits = GroupCommit(self._run_batch)
        self._files = FileIdentity(self.path)
        self._owner_locks = {}
        self._wakes = WakeSockets(self.path)
        self._wake_callbacks: list[Callable[[], None]] = []

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        """Open the connections, switch to WAL and apply migrations."""
        connection.check_directory(self.path)
        try:
            self._writer = await self._connect()
            await connection.prepare_writer(self._writer, self.path)
            self._reader = await self._connect()
            await self._reader.execute("PRAGMA query_only=ON")
            self._checkpointer = await self._connect()
            if self.synchronous in {"OFF", "NORMAL"}:
                self._inline = await asyncio.to_thread(
                    connection.connect_inline, self.path, self.synchronous
                )
            self._files.record()
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            cause = connection.os_cause(self.path)
            raise StoreUnavailableError(
                f"cannot open task database {self.path}: {exc}{f' ({cause})' if cause else ''}"
            ) from exc
        self._commits.start()
        if self._wake_callbacks:
            self._wakes.listen(self._woken)
        self._checkpoints = asyncio.create_task(
            checkpoint_loop(self.path, lambda: self._checkpointer, lambda: self._commit_count),
            name="tasks-checkpoint",
        )

    async def _connect(self) -> aiosqlite.Connection:
        return await connection.connect(self.path, self.busy_timeout, self.synchronous)

    async def close(self) -> None:
        """Commit pending writes, stop checkpointing and close the connections.

        Lock files still held (a worker that never unregistered) are let go:
        other processes then take this process's owners for dead.
        """
        try:
            await self._commits.close()
        finally:
            self._wakes.close()
            if self._inline is not None:
                self._inline.close()
                self._inline = None
            if self._checkpoints is not None:
                self._checkpoints.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._checkpoints
                self._checkpoints = None
            for conn in (self._checkpointer, self._reader, self._writer):
                if conn is not None:
                    await conn.close()
            self._checkpointer = self._reader = self._writer = None
            self._release_locks()

    def on_new_work(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when another process wakes this one (work it made due).

        Listens on a datagram socket next to the database (see
        :mod:`~tasks.store.sqlite.wakeups`); a lost wake-up is found by polling.
        """
        self._wake_callbacks.append(callback)
        if self._writer is not None:
            self._wakes.listen(self._woken)

    def _woken(self) -> None:
        for callback in list(self._wake_callbacks):
            callback()

    @property
    def listening(self) -> bool:
        """Whether other processes can wake this one (its wake socket is bound)."""
        return self._wakes.listening

    @property
    def wake_directory(self) -> str:
        """Where the wake-up sockets of the processes using this file are."""
        return self._wakes.directory

    def wake_others(self) -> None:
        """Wake every other process listening on this database (never blocks, never raises).

        The store does this itself after a commit that made work due; call it
        after a commit that made work claimable in another way (a freed slot
        of a shared concurrency limit).
        """
        self._wakes.signal()

    @property
    def _db(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise StoreUnavailableError(f"task database {self.path} is not open")
        return self._writer

    def check_files(self) -> None:
        """Raise :class:`StoreUnavailableError` if the database file was deleted or replaced.

        Each transaction and each read checks (see
        :class:`~tasks.store.sqlite.connection.FileIdentity`); once the file is
        lost, every write and read fails until the process is restarted.
        """
        self._files.check()

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
            return await on_connection_thread(connection, writes.insert_all, list(tasks))
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot write task database {self.path}: {exc}") from exc

    async def claim(
        self,
        owner: str,
        queues: Sequence[str],
        limit: int | Callable[[], int],
        lease_seconds: float,
        caps: Mapping[str, int] | None = None,
    ) -> list[TaskRecord]:
        """Claim due tasks; see :meth:`Store.claim`."""
        if not queues or (isinstance(limit, int) and limit <= 0):
            return []
        payload = claim_payload(owner, tuple(queues), limit, lease_seconds, caps)
        claimed: Claimed = await self._write("claim", payload)
        if claimed.reopens is not None and self._limit_wait is not None:
            self._limit_wait(claimed.reopens)
        return claimed.records

    def on_limit_wait(self, callback: Callable[[float], None]) -> None:
        """See :meth:`Store.on_limit_wait`."""
        self._limit_wait = callback

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
        lost: set[str] = await self._call(control.renew_leases, owner, ids, lease_seconds)
        return lost

    async def release(self, owner: str, task_ids: Sequence[str]) -> int:
        """Requeue tasks and refund their attempt; see :meth:`Store.release`."""
        ids = list(task_ids)
        if not ids:
            return 0
        released: int = await self._call(control.release, owner, ids)
        return released

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel a task; see :meth:`Store.cancel`."""
        result: TaskRecord | None = await self._call(control.cancel, task_id)
        return result

    async def retry(self, task_id: str) -> TaskRecord | None:
        """Requeue a failed or cancelled task; see :meth:`Store.retry`."""
        result: TaskRecord | None = await self._call(control.retry, task_id)
        return result

    async def purge_finished(
        self, finished_before: float, limit: int, states: Collection[State] = TERMINAL_STATES
    ) -> int:
        """Delete old finished tasks; see :meth:`Store.purge_finished`."""
        chosen = terminal_values(states)
        if limit <= 0 or not chosen:
            return 0
        purged: int = await self._call(control.purge_finished, finished_before, limit, chosen)
        return purged

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(connection, *args)`` in a group-commit transaction."""
        return await self._write("call", _Call(fn, args, fn.__name__ in _WAKING))

    async def _write(self, kind: str, payload: Any) -> Any:
        try:
            return await self._commits.submit(kind, payload)
        except ClosedError as exc:
            raise StoreUnavailableError(f"task database {self.path} is closed") from exc

    async def _run_batch(self, batch: Sequence[WriteRequest]) -> builtins.list[Any]:
        for attempt in range(_BUSY_RETRIES):
            try:
                results = await self._transaction(batch)
                return [self._rejected(r) if isinstance(r, RequestFailed) else r for r in results]
            except sqlite3.OperationalError as exc:
                locked = busy(exc)
                if locked and attempt + 1 < _BUSY_RETRIES:
                    log.warning("task database busy, retrying: %s", exc)
                    continue
                if locked:
                    raise StoreUnavailableError(
                        f"cannot write task database {self.path}: other writers held it for"
                        f" {_BUSY_RETRIES} x {self.busy_timeout:g} s; try again later"
                    ) from exc
                raise StoreUnavailableError(
                    f"cannot write task database {self.path}: {exc}"
                ) from exc
            except Exception as exc:
                if request_error(exc):  # a batch of one request: the error is its own
                    raise self._rejected(RequestFailed(exc)).error  # noqa: B904
                raise StoreUnavailableError(
                    f"cannot write task database {self.path}: {exc}"
                ) from exc
        raise AssertionError("unreachable")

    def _rejected(self, failed: RequestFailed) -> RequestFailed:
        """A request's own failure as the caller sees it; see :func:`rejected`."""
        return rejected(failed, f"task database {self.path}")

    async def _transaction(self, batch: Sequence[WriteRequest]) -> builtins.list[Any]:
        """Run one batch in one transaction: on the loop's thread if small and the lock
        is free at once, else in one round trip to the writer's thread.

        The whole transaction (``BEGIN IMMEDIATE``, every statement, ``COMMIT``)
        is one call on the writer connection's aiosqlite thread: each round
        trip between the event loop and that thread waits for the OS to
        schedule the other side, and under load for a turn of the busy loop.
        A small batch (see :func:`inline_size`) costs less than that round
        trip, so it runs inline when it can take the write lock without
        waiting; larger batches stay on the thread, where SQLite's work
        overlaps the loop's (``sqlite3`` releases the GIL).
        """
        db = self._db
        inline = self._inline
        if inline is not None and inline_size(batch):
            try:
                inline.execute("BEGIN IMMEDIATE")  # fails at once if another process writes
            except sqlite3.OperationalError as exc:
                if not busy(exc):
                    raise
            else:
                results = self._committed(inline, batch, begun=True)
                self._commit_count += 1
                return results
        results = await on_connection_thread(db, self._committed, batch)
        self._commit_count += 1
        return results

    def _committed(
        self, conn: sqlite3.Connection, batch: Sequence[WriteRequest], *, begun: bool = False
    ) -> builtins.list[Any]:
        """Run the batch's transaction, then wake other processes if it made work due.

        Runs on the thread that commits, so the wake-up leaves right after the
        commit, before this process's loop hears of it.
        """
        results = run_transaction(conn, batch, self.check_files, begun=begun)
        if work_for_others(batch, results, time.time()):
            self._wakes.signal()
        return results

    # -- reads ---------------------------------------------------------------

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> builtins.list[Any]:
        self.check_files()  # a read of a deleted file would answer for tasks that are gone
        if self._reader is None:
            raise StoreUnavailableError(f"task database {self.path} is not open")
        try:
            return builtins.list(await self._reader.execute_fetchall(sql, params))
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"cannot read task database {self.path}: {exc}") from exc
