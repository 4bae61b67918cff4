"""The PostgreSQL store: its lifecycle, and each write as a request to group commit.

Every state change goes through :class:`~tasks.store.batching.GroupCommit`
(:mod:`~tasks.store.postgres.transaction`); reads use the pool directly
(:mod:`~tasks.store.postgres.reads`). The methods here only check their
arguments and submit; the SQL lives in the modules they submit to. A
transaction the server aborts as a deadlock or serialisation failure is
retried as a whole.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

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
from tasks.store.postgres import connection, control, schedules, workflows
from tasks.store.postgres.connection import (
    DB_ERRORS,
    OPEN_ERRORS,
    RETRYABLE,
    Connection,
    describe_url,
)
from tasks.store.postgres.held import HeldLimits
from tasks.store.postgres.notifications import NOTIFY, NOTIFY_LIMITS, NewWorkListener
from tasks.store.postgres.reads import PostgresReads
from tasks.store.postgres.transaction import request_error, run_transaction
from tasks.store.postgres.workers import PostgresWorkers
from tasks.store.postgres.writes import check_storable, insert_tasks
from tasks.store.schedule_store import ScheduleStore
from tasks.store.workflow_store import WorkflowStore

log = logging.getLogger("tasks.store")

_T = TypeVar("_T")
_TXN_RETRIES = 3
_NOTIFY_ERRORS: tuple[type[BaseException], ...] = (*DB_ERRORS, StoreUnavailableError)


class PostgresStore(ScheduleStore, WorkflowStore, PostgresWorkers, PostgresReads):
    """Tasks in a PostgreSQL database. See :class:`tasks.store.base.Store` for the contract.

    The URL is an asyncpg DSN; query parameters asyncpg does not know become
    server settings (``?search_path=myschema`` puts the tables in that schema).
    """

    _schedule_sql = schedules
    _workflow_sql = workflows

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        connect_timeout: float = 10.0,
        command_timeout: float | None = 60.0,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, not {pool_size}")
        scheme = urlsplit(url).scheme
        if scheme not in {"postgres", "postgresql"}:
            raise ValueError(f"not a PostgreSQL URL: {describe_url(url)}")
        self.url = url
        self._limit_wait: Callable[[float], None] | None = None
        self._held = HeldLimits()
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._description = describe_url(url)
        self._secrets = connection.secrets(url)
        self._server_settings = connection.server_settings(url)
        self._pool: Any = None
        self._commits = GroupCommit(self._run_batch)
        self._listener = NewWorkListener(
            url,
            self._description,
            self._secrets,
            connect_timeout=connect_timeout,
            server_settings=self._server_settings,
            on_limits=self._held.clear,
        )
        self._sessions = {}
        self._free_since = {}
        self._opened = False
        self._closed = False
        self._writer: Connection = None
        self._notifying: set[asyncio.Task[None]] = set()
        """The pooled connection group commit keeps for its transactions (pools of 2+)."""

    def __repr__(self) -> str:
        return f"<PostgresStore {self._description}>"

    # -- lifecycle ---------------------------------------------------------

    async def open(self) -> None:
        """Create the pool, apply migrations, and start listening if asked to."""
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                timeout=self.connect_timeout,
                command_timeout=self.command_timeout,
                server_settings=self._server_settings,
            )
            await connection.migrate(self._pool, self._description)
        except OPEN_ERRORS as exc:
            await self.close()
            raise StoreUnavailableError(
                f"cannot open {self._description}: {self._cause(exc)}"
            ) from exc
        self._commits.start()
        self._opened = True
        if self._listener.callbacks:
            self._listener.start()

    async def close(self) -> None:
        """Commit pending writes, stop listening and close every connection."""
        self._closed = True
        try:
            await self._commits.close()
        finally:
            await self._stop_sessions()
            await self._drop_writer()
            await self._listener.stop()
            pool, self._pool = self._pool, None
            if pool is not None:
                try:
                    await asyncio.wait_for(pool.close(), timeout=self.connect_timeout)
                except BaseException as exc:
                    pool.terminate()
                    if not isinstance(exc, Exception):
                        raise

    def _cause(self, exc: BaseException) -> str:
        return connection.redact(exc, self._secrets)

    @property
    def _db(self) -> Any:
        if self._pool is None:
            raise StoreUnavailableError(f"{self._description} is not open")
        return self._pool

    def on_new_work(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever a transaction that made work available commits.

        That includes this process's own writes. After the listening connection
        was lost and is back, every callback is called once, since
        notifications sent meanwhile were missed.
        """
        self._listener.callbacks.append(callback)
        if self._opened and not self._closed and not self._listener.started:
            self._listener.start()

    def wake_others(self) -> None:
        """Send the limits-freed ``NOTIFY`` now, outside any batch; see :meth:`Store.wake_others`.

        Every listener, this process's included, wakes up and forgets that its
        queues' limited tasks were held (see :mod:`.held`).
        """
        self._held.clear()
        if self._pool is None or self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._notify(), name="tasks-notify")
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    async def _notify(self) -> None:
        try:
            await self._db.execute(NOTIFY_LIMITS)
        except _NOTIFY_ERRORS as exc:  # polling makes up for it
            log.debug("could not notify other processes: %s", self._cause(exc))

    @property
    def listening(self) -> bool:
        """Whether the notification connection is currently listening."""
        return self._listener.listening

    # -- writes (group-committed) -------------------------------------------

    async def insert(self, tasks: Sequence[NewTask], *, max_queued: int = 0) -> list[Inserted]:
        """Insert tasks; see :meth:`Store.insert`."""
        new = list(tasks)
        for task in new:
            check_storable(task)
        if not new:
            return []
        result: list[Inserted] = await self._write("insert", (new, max_queued))
        return result

    async def insert_in(self, connection: Connection, tasks: Sequence[NewTask]) -> list[Inserted]:
        """Insert tasks with the caller's connection, inside the caller's transaction.

        For transactional enqueue: the tasks exist if and only if the caller's
        transaction commits, and the new-work notification is sent on that
        commit. Without a transaction open, the insert runs in its own.
        The tables are found through the connection's ``search_path``.
        """
        new = list(tasks)
        for task in new:
            check_storable(task)
        if not new:
            return []
        try:
            if connection.is_in_transaction():
                return await self._insert_in(connection, new)
            async with connection.transaction():
                return await self._insert_in(connection, new)
        except DB_ERRORS as exc:
            raise StoreUnavailableError(
                f"cannot insert tasks into {self._description}: {self._cause(exc)}"
            ) from exc

    async def _insert_in(self, conn: Connection, tasks: list[NewTask]) -> list[Inserted]:
        answers = await insert_tasks(conn, tasks)
        created = [t for a, t in zip(answers, tasks, strict=True) if a.created]
        if created:
            limited = any(t.limits.claim_limited for t in created)
            await conn.execute(NOTIFY_LIMITS if limited else NOTIFY)
        return answers

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
        payload = claim_payload(owner, list(queues), limit, lease_seconds, caps)
        claimed: Claimed = await self._write("claim", payload)
        if claimed.reopens is not None and self._limit_wait is not None:
            self._limit_wait(claimed.reopens)
        return claimed.records

    def on_limit_wait(self, callback: Callable[[float], None]) -> None:
        """See :meth:`Store.on_limit_wait`."""
        self._limit_wait = callback

    async def finish(self, changes: Sequence[Finish]) -> list[bool]:
        """Apply end-of-run changes; see :meth:`Store.finish`."""
        todo = list(changes)
        if not todo:
            return []
        result: list[bool] = await self._write("finish", todo)
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
        return await self._call(control.renew_leases, owner, ids, lease_seconds)

    async def release(self, owner: str, task_ids: Sequence[str]) -> int:
        """Requeue tasks and refund their attempt; see :meth:`Store.release`."""
        ids = list(task_ids)
        if not ids:
            return 0
        return await self._call(control.release, owner, ids)

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel a task; see :meth:`Store.cancel`."""
        return await self._call(control.cancel, task_id)

    async def retry(self, task_id: str) -> TaskRecord | None:
        """Requeue a failed or cancelled task; see :meth:`Store.retry`."""
        return await self._call(control.retry, task_id)

    async def purge_finished(
        self, finished_before: float, limit: int, states: Collection[State] = TERMINAL_STATES
    ) -> int:
        """Delete old finished tasks; see :meth:`Store.purge_finished`."""
        chosen = terminal_values(states)
        if limit <= 0 or not chosen:
            return 0
        return await self._call(control.purge_finished, finished_before, limit, chosen)

    async def _call(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Run ``await fn(tx, *args)`` in a group-commit transaction."""
        result: _T = await self._write("call", lambda tx: fn(tx, *args))
        return result

    async def _write(self, kind: str, payload: Any) -> Any:
        if not self._opened:
            raise StoreUnavailableError(f"{self._description} is not open")
        try:
            return await self._commits.submit(kind, payload)
        except ClosedError as exc:
            raise StoreUnavailableError(f"{self._description} is closed") from exc

    async def _in_transaction(self, batch: Sequence[WriteRequest]) -> builtins.list[Any]:
        """Run the batch on the kept writer connection (or, in a pool of one, a borrowed one).

        Keeping it saves a round trip per transaction: a connection given back
        to an asyncpg pool is reset on the server. A connection that fails in
        a way that is not the batch's own is given back and replaced.
        """
        pool = self._db
        if self.pool_size < 2:
            async with pool.acquire() as conn:
                return await run_transaction(conn, batch, self._held)
        if self._writer is None:
            self._writer = await pool.acquire()
        try:
            return await run_transaction(self._writer, batch, self._held)
        except BaseException as exc:
            if not (isinstance(exc, Exception) and request_error(exc)) or (
                self._writer is not None and self._writer.is_in_transaction()
            ):
                await self._drop_writer()
            raise

    async def _drop_writer(self) -> None:
        """Give the writer's connection back to the pool (which closes it if broken)."""
        conn, self._writer = self._writer, None
        if conn is None or self._pool is None:
            return
        try:
            await asyncio.wait_for(self._pool.release(conn), timeout=self.connect_timeout)
        except BaseException as exc:
            conn.terminate()
            if not isinstance(exc, Exception):
                raise

    async def _run_batch(self, batch: Sequence[WriteRequest]) -> builtins.list[Any]:
        for attempt in range(_TXN_RETRIES):
            try:
                results = await self._in_transaction(batch)
                return [self._rejected(r) if isinstance(r, RequestFailed) else r for r in results]
            except RETRYABLE as exc:
                if attempt + 1 < _TXN_RETRIES:
                    log.warning("task transaction rolled back, retrying: %s", exc)
                    continue
                raise StoreUnavailableError(
                    f"cannot write to {self._description}: {self._cause(exc)}"
                ) from exc
            except Exception as exc:
                if request_error(exc):  # a batch of one request: the error is its own
                    raise self._rejected(RequestFailed(exc)).error  # noqa: B904
                raise StoreUnavailableError(
                    f"cannot write to {self._description}: {self._cause(exc)}"
                ) from exc
        raise AssertionError("unreachable")

    def _rejected(self, failed: RequestFailed) -> RequestFailed:
        """A request's own failure as the caller sees it; see :func:`rejected`."""
        return rejected(failed, self._description, self._cause)

    # -- reads ---------------------------------------------------------------

    async def _read(self, sql: str, *args: Any) -> builtins.list[Any]:
        try:
            rows: builtins.list[Any] = await self._db.fetch(sql, *args)
        except DB_ERRORS as exc:
            raise StoreUnavailableError(
                f"cannot read from {self._description}: {self._cause(exc)}"
            ) from exc
        return rows
