"""The PostgreSQL backend, on asyncpg: a connection pool, group-committed writes.

Every state change goes through :class:`~tasks.store.batching.GroupCommit`:
concurrent inserts, claims, finishes and progress updates of this process
share one transaction on one pooled connection. Reads use the pool directly.
Several processes (and hosts) may share the database: claims lock their rows
with ``FOR UPDATE SKIP LOCKED``, every other change is guarded by the state
and lease owner it expects, and a transaction the server aborts as a deadlock
or serialisation failure is retried as a whole.

Writes that make work available (inserts, retries, releases, requeues) send
``NOTIFY`` in the same transaction; :meth:`PostgresStore.on_new_work` listens
on a dedicated connection that reconnects by itself.

Timestamps are Unix epoch seconds from this process's clock, as in SQLite, so
hosts sharing a database need synchronised clocks (NTP) for leases to work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from tasks.errors import StoreUnavailableError, TasksError, WriteRejectedError
from tasks.model import Finish, NewTask, Progress, State, TaskRecord
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
from tasks.store.migrations import load_migrations
from tasks.store.rows import COLUMNS, record_from_row, summary_columns

log = logging.getLogger("tasks.store")

Connection: TypeAlias = Any
"""An ``asyncpg.Connection`` (or pool proxy); asyncpg is untyped."""

_T = TypeVar("_T")
_T_COLUMNS = ", ".join(f"tasks.{c.strip()}" for c in COLUMNS.split(","))

# Errors that mean "the database did not do it": server errors, driver and
# protocol errors, network errors and timeouts.
_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
_OPEN_ERRORS: tuple[type[BaseException], ...] = (*_DB_ERRORS, ValueError)  # ValueError: bad URL
# The server rolled the whole transaction back; running it again is safe.
_RETRYABLE: tuple[type[BaseException], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
_TXN_RETRIES = 3

_MIGRATION_LOCK = 0x7461736B73  # "tasks": one advisory lock for every starter
_BACKLOG_LOCK = 0x7461736B71  # held by each insert that checks TASKS_MAX_QUEUED
_COUNT_QUEUED = "SELECT COUNT(*) FROM tasks WHERE state = 'queued'"
_APPLICATION_NAME = "quart-taskqueue"

# One channel per schema, so stores in different schemas of one database do not
# wake each other. Evaluated by the server on the connection that notifies or
# listens, so the caller's own connection (insert_in) agrees with the store's.
_CHANNEL_SQL = (
    "CASE WHEN current_schema() = 'public' THEN 'tasks_new_work'"
    " ELSE 'tasks_new_work.' || hashtext(current_schema())::text END"
)
_NOTIFY = f"SELECT pg_notify({_CHANNEL_SQL}, '')"

_LISTEN_BACKOFF_MIN = 0.5
_LISTEN_BACKOFF_MAX = 30.0

_INSERT_COLUMNS = (
    "id, name, queue, state, args, kwargs, priority, max_attempts, run_at, created_at,"
    " idempotency_key"
)
_INSERT_ONE = (
    f"INSERT INTO tasks ({_INSERT_COLUMNS})"
    " VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10)"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)
_INSERT_MANY = f"""
INSERT INTO tasks ({_INSERT_COLUMNS})
SELECT v.id, v.name, v.queue, 'queued', v.args, v.kwargs, v.priority, v.max_attempts,
       v.run_at, v.created_at, NULL
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
            $7::bigint[], $8::float8[], $9::float8[])
     AS v(id, name, queue, args, kwargs, priority, max_attempts, run_at, created_at)
"""
# Mirrors SQLite's _FINISH. RETURNING the ordinality tells exactly which change
# applied, even when two changes in one batch name the same task.
_FINISH = """
UPDATE tasks SET
    state = v.state,
    result = v.result,
    error_type = CASE WHEN v.refund THEN tasks.error_type ELSE v.error_type END,
    error_message = CASE WHEN v.refund THEN tasks.error_message ELSE v.error_message END,
    error_traceback = CASE WHEN v.refund THEN tasks.error_traceback ELSE v.error_traceback END,
    run_at = COALESCE(v.run_at, tasks.run_at),
    attempts = tasks.attempts - CASE WHEN v.refund THEN 1 ELSE 0 END,
    progress_current = COALESCE(v.progress_current, tasks.progress_current),
    progress_total = COALESCE(v.progress_total, tasks.progress_total),
    progress_message = COALESCE(v.progress_message, tasks.progress_message),
    started_at = CASE WHEN v.state = 'queued' THEN NULL ELSE tasks.started_at END,
    finished_at = CASE WHEN v.state = 'queued' THEN NULL ELSE $13::float8 END,
    lease_owner = NULL,
    lease_expires_at = NULL,
    version = tasks.version + 1
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::float8[], $8::bool[], $9::float8[], $10::float8[], $11::text[], $12::text[])
     WITH ORDINALITY
     AS v(id, state, result, error_type, error_message, error_traceback, run_at, refund,
          progress_current, progress_total, progress_message, owner, ord)
WHERE tasks.id = v.id AND tasks.lease_owner = v.owner
    AND (tasks.state = 'running' OR (tasks.state = 'cancelling' AND v.state = 'cancelled'))
RETURNING v.ord
"""
_PROGRESS = """
UPDATE tasks SET
    progress_current = v.current, progress_total = v.total, progress_message = v.message,
    version = tasks.version + 1
FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::text[])
     AS v(id, owner, current, total, message)
WHERE tasks.id = v.id AND tasks.state IN ('running', 'cancelling') AND tasks.lease_owner = v.owner
"""
# The due rows are picked in a MATERIALIZED CTE, which runs exactly once. In the
# form "UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)" the
# planner may put the subquery on the inner side of a nested loop and rescan it
# per outer row; each rescan skips the rows this statement already updated and
# picks new ones, so more than n tasks get claimed.
_CLAIM = """
WITH due AS MATERIALIZED (
    SELECT id FROM tasks
    WHERE state = 'queued' AND run_at <= $1 AND {queue_match}
    ORDER BY priority DESC, run_at, id
    LIMIT $5
    FOR UPDATE SKIP LOCKED
)
UPDATE tasks SET
    state = 'running', attempts = attempts + 1, started_at = $1 + {waited}, lease_owner = $2,
    lease_expires_at = $3 + {waited}, version = version + 1
FROM due
WHERE tasks.id = due.id
RETURNING {columns}
"""
# One queue (the usual case) walks tasks_claimable in order and stops after
# LIMIT rows; "queue = ANY(...)" cannot use the index order and sorts every
# due task of those queues.
_WAITED = "EXTRACT(EPOCH FROM clock_timestamp() - transaction_timestamp())::float8"
"""Seconds since the transaction began, by the server's clock, as each row is written.

Added to ``_Tx.now`` (this process's clock when the transaction began) for
leases and ``started_at``: a statement may wait for a lock, and a lease
stamped before that wait would already be running out when the claim commits.
"""
_CLAIM_ONE_QUEUE = _CLAIM.format(queue_match="queue = $4::text", columns=_T_COLUMNS, waited=_WAITED)
_CLAIM_QUEUES = _CLAIM.format(
    queue_match="queue = ANY($4::text[])", columns=_T_COLUMNS, waited=_WAITED
)
_PURGE = """
WITH old AS MATERIALIZED (
    SELECT id FROM tasks
    WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at < $1
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM tasks USING old WHERE tasks.id = old.id
"""


@dataclass(slots=True)
class _Tx:
    """One group-commit transaction: its connection, its clock, whether to notify.

    ``now`` is read once the transaction has begun. A statement may still wait
    for a lock after that; the statements that write leases and ``started_at``
    add that wait themselves (see :data:`_WAITED`).
    """

    conn: Connection
    now: float
    notify: bool = False


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


def _secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [] if parts.password is None else [parts.password, unquote(parts.password)]
    found += parse_qs(parts.query).get("password", [])
    return [s for s in found if s]


def _clean(text: str | None) -> str | None:
    """Free text made storable: PostgreSQL text holds no NUL and no lone surrogate.

    Used for error and progress messages, which come from arbitrary task code:
    one unstorable message must not fail the whole group-commit batch.
    """
    if text is None:
        return None
    text = text.replace("\x00", "\N{REPLACEMENT CHARACTER}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _check_storable(task: NewTask) -> None:
    """Refuse, before it joins a batch, a task PostgreSQL cannot store."""
    for field in ("id", "name", "queue", "args_json", "kwargs_json", "idempotency_key"):
        value = getattr(task, field)
        if value is None:
            continue
        if "\x00" in value:
            raise ValueError(f"task {field} contains a NUL character: {value!r}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"task {field} is not valid Unicode: {value!r}") from exc


class PostgresStore(Listings):
    """Tasks in a PostgreSQL database. See :class:`tasks.store.base.Store` for the contract.

    The URL is an asyncpg DSN; query parameters asyncpg does not know become
    server settings (``?search_path=myschema`` puts the tables in that schema).
    """

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
        self.pool_size = pool_size
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._description = describe_url(url)
        self._secrets = _secrets(url)
        self._server_settings: dict[str, str] | None = None
        if "application_name" not in parse_qs(urlsplit(url).query):
            self._server_settings = {"application_name": _APPLICATION_NAME}
        self._pool: Any = None
        self._commits = GroupCommit(self._run_batch)
        self._callbacks: list[Callable[[], None]] = []
        self._listener: asyncio.Task[None] | None = None
        self._listening = False
        self._opened = False
        self._closed = False

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
            await self._migrate()
        except _OPEN_ERRORS as exc:
            await self.close()
            raise StoreUnavailableError(
                f"cannot open {self._description}: {self._cause(exc)}"
            ) from exc
        self._commits.start()
        self._opened = True
        if self._callbacks:
            self._start_listener()

    async def close(self) -> None:
        """Commit pending writes, stop listening and close every connection."""
        self._closed = True
        try:
            await self._commits.close()
        finally:
            listener, self._listener = self._listener, None
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            pool, self._pool = self._pool, None
            if pool is not None:
                try:
                    await asyncio.wait_for(pool.close(), timeout=self.connect_timeout)
                except BaseException as exc:
                    pool.terminate()
                    if not isinstance(exc, Exception):
                        raise

    async def _migrate(self) -> None:
        async with self._pool.acquire() as conn:
            for migration in load_migrations("postgres"):
                async with conn.transaction():
                    # Serialise concurrent starters: the lock is held until commit.
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                    await conn.execute(
                        "CREATE TABLE IF NOT EXISTS tasks_schema_migrations (version integer"
                        " PRIMARY KEY, name text NOT NULL, applied_at double precision NOT NULL)"
                    )
                    done = await conn.fetchval(
                        "SELECT 1 FROM tasks_schema_migrations WHERE version = $1",
                        migration.version,
                    )
                    if done is None:
                        await conn.execute(migration.sql)  # no arguments: multi-statement
                        await conn.execute(
                            "INSERT INTO tasks_schema_migrations VALUES ($1, $2, $3)",
                            migration.version,
                            migration.name,
                            time.time(),
                        )
                        log.info("applied migration %s to %s", migration.name, self._description)

    def _cause(self, exc: BaseException) -> str:
        text = str(exc) or repr(exc)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return f"{type(exc).__name__}: {text}"

    @property
    def _db(self) -> Any:
        if self._pool is None:
            raise StoreUnavailableError(f"{self._description} is not open")
        return self._pool

    # -- notifications -----------------------------------------------------

    def on_new_work(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever a transaction that made work available commits.

        That includes this process's own writes. After the listening connection
        was lost and is back, every callback is called once, since
        notifications sent meanwhile were missed.
        """
        self._callbacks.append(callback)
        if self._opened and not self._closed and self._listener is None:
            self._start_listener()

    @property
    def listening(self) -> bool:
        """Whether the notification connection is currently listening."""
        return self._listening

    def _start_listener(self) -> None:
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(), name="tasks-postgres-listen"
        )

    def _wake(self) -> None:
        for callback in list(self._callbacks):
            try:
                callback()
            except Exception:
                log.exception("new-work callback %r failed", callback)

    def _notified(self, conn: Connection, pid: int, channel: str, payload: str) -> None:
        self._wake()

    async def _listen(self) -> None:
        """Keep one connection LISTENing; reconnect with backoff when it is lost."""
        delay = _LISTEN_BACKOFF_MIN
        first_attempt = True
        while True:
            conn: Connection = None
            lost = asyncio.Event()
            was_listening = False
            try:
                conn = await asyncpg.connect(
                    self.url, timeout=self.connect_timeout, server_settings=self._server_settings
                )
                conn.add_termination_listener(lambda _conn, event=lost: event.set())
                channel = await conn.fetchval(f"SELECT {_CHANNEL_SQL}")
                await conn.add_listener(channel, self._notified)
                self._listening = was_listening = True
                log.debug("listening on channel %s of %s", channel, self._description)
                if not first_attempt:
                    # Notifications sent while nobody listened are lost: wake up once.
                    log.info("notification connection to %s is back", self._description)
                    self._wake()
                delay = _LISTEN_BACKOFF_MIN
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), timeout=30.0)
                    except TimeoutError:  # a silent network failure shows up here
                        await conn.fetchval("SELECT 1", timeout=self.connect_timeout)
                reason = "connection closed"
            except Exception as exc:  # whatever it was, keep trying
                reason = self._cause(exc)
            finally:
                self._listening = False
                if conn is not None:
                    await self._close_quietly(conn)
            first_attempt = False
            log.warning(
                "%s notifications from %s (%s); reconnecting in %.1fs",
                "lost" if was_listening else "cannot listen for",
                self._description,
                reason,
                delay,
            )
            await asyncio.sleep(delay)  # backoff, not synchronisation
            delay = min(delay * 2, _LISTEN_BACKOFF_MAX)

    async def _close_quietly(self, conn: Connection) -> None:
        if conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), timeout=self.connect_timeout)
        except BaseException as exc:
            conn.terminate()
            if not isinstance(exc, Exception):
                raise

    # -- writes (group-committed) -------------------------------------------

    async def insert(self, tasks: Sequence[NewTask], *, max_queued: int = 0) -> list[Inserted]:
        """Insert tasks; see :meth:`Store.insert`."""
        new = list(tasks)
        for task in new:
            _check_storable(task)
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
            _check_storable(task)
        if not new:
            return []
        try:
            if connection.is_in_transaction():
                return await self._insert_in(connection, new)
            async with connection.transaction():
                return await self._insert_in(connection, new)
        except _DB_ERRORS as exc:
            raise StoreUnavailableError(
                f"cannot insert tasks into {self._description}: {self._cause(exc)}"
            ) from exc

    async def _insert_in(self, conn: Connection, tasks: list[NewTask]) -> list[Inserted]:
        answers = await _insert_tasks(conn, tasks)
        if any(a.created for a in answers):
            await conn.execute(_NOTIFY)
        return answers

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
        payload = claim_payload(owner, list(queues), limit, lease_seconds)
        result: list[TaskRecord] = await self._write("claim", payload)
        return result

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

        async def renew(tx: _Tx) -> set[str]:
            rows = await tx.conn.fetch(
                f"UPDATE tasks SET lease_expires_at = $1 + {_WAITED} WHERE id = ANY($2::text[])"
                " AND state IN ('running', 'cancelling') AND lease_owner = $3 RETURNING id",
                tx.now + lease_seconds,
                ids,
                owner,
            )
            return set(ids) - {row[0] for row in rows}

        return await self._call(renew)

    async def release(self, owner: str, task_ids: Sequence[str]) -> int:
        """Requeue tasks and refund their attempt; see :meth:`Store.release`."""
        ids = list(task_ids)
        if not ids:
            return 0

        async def release(tx: _Tx) -> int:
            rows = await tx.conn.fetch(
                "UPDATE tasks SET version = version + 1, lease_owner = NULL,"
                " lease_expires_at = NULL,"
                " state = CASE state WHEN 'cancelling' THEN 'cancelled' ELSE 'queued' END,"
                " attempts = CASE state WHEN 'cancelling' THEN attempts"
                " ELSE GREATEST(attempts - 1, 0) END,"
                " started_at = CASE state WHEN 'cancelling' THEN started_at END,"
                " finished_at = CASE state WHEN 'cancelling' THEN $3::float8 END"
                " WHERE id = ANY($1::text[])"
                " AND state IN ('running', 'cancelling') AND lease_owner = $2 RETURNING id",
                ids,
                owner,
                tx.now,
            )
            tx.notify = tx.notify or bool(rows)
            return len(rows)

        return await self._call(release)

    async def reclaim_expired(self, error_message: str) -> Reclaimed:
        """Recover tasks of dead owners; see :meth:`Store.reclaim_expired`."""
        message = _clean(error_message)

        async def reclaim(tx: _Tx) -> Reclaimed:
            failed = await tx.conn.fetch(
                "UPDATE tasks SET state = 'failed', finished_at = $1, lease_owner = NULL,"
                " lease_expires_at = NULL, error_type = 'WorkerLostError', error_message = $2,"
                " error_traceback = NULL, version = version + 1"
                " WHERE state = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts"
                " RETURNING id",
                tx.now,
                message,
            )
            requeued = await tx.conn.fetch(
                "UPDATE tasks SET state = 'queued', started_at = NULL, lease_owner = NULL,"
                " lease_expires_at = NULL, run_at = $1, version = version + 1"
                " WHERE state = 'running' AND lease_expires_at < $1 RETURNING id",
                tx.now,
            )
            cancelled = await tx.conn.fetch(
                "UPDATE tasks SET state = 'cancelled', finished_at = $1, lease_owner = NULL,"
                " lease_expires_at = NULL, version = version + 1"
                " WHERE state = 'cancelling' AND lease_expires_at < $1 RETURNING id",
                tx.now,
            )
            tx.notify = tx.notify or bool(requeued)
            return Reclaimed(
                [r[0] for r in requeued], [r[0] for r in failed], [r[0] for r in cancelled]
            )

        return await self._call(reclaim)

    async def cancel(self, task_id: str) -> TaskRecord | None:
        """Cancel a task; see :meth:`Store.cancel`."""

        async def cancel(tx: _Tx) -> TaskRecord | None:
            await tx.conn.execute(
                "UPDATE tasks SET version = version + 1,"
                " state = CASE state WHEN 'running' THEN 'cancelling' ELSE 'cancelled' END,"
                " finished_at = CASE state WHEN 'running' THEN NULL ELSE $1::float8 END,"
                " lease_owner = CASE state WHEN 'running' THEN lease_owner END,"
                " lease_expires_at = CASE state WHEN 'running' THEN lease_expires_at END"
                " WHERE id = $2 AND state IN ('queued', 'running')",
                tx.now,
                task_id,
            )
            return await _select_one(tx.conn, task_id)

        return await self._call(cancel)

    async def retry(self, task_id: str) -> TaskRecord | None:
        """Requeue a failed or cancelled task; see :meth:`Store.retry`."""

        async def retry(tx: _Tx) -> TaskRecord | None:
            applied = await tx.conn.fetchval(
                "UPDATE tasks SET state = 'queued', attempts = 0, run_at = $1, started_at = NULL,"
                " finished_at = NULL, result = NULL, error_type = NULL, error_message = NULL,"
                " error_traceback = NULL, progress_current = NULL, progress_total = NULL,"
                " progress_message = NULL, version = version + 1"
                " WHERE id = $2 AND state IN ('failed', 'cancelled') RETURNING id",
                tx.now,
                task_id,
            )
            tx.notify = tx.notify or applied is not None
            return await _select_one(tx.conn, task_id)

        return await self._call(retry)

    async def purge_finished(self, finished_before: float, limit: int) -> int:
        """Delete old finished tasks; see :meth:`Store.purge_finished`."""
        if limit <= 0:
            return 0

        async def purge(tx: _Tx) -> int:
            status: str = await tx.conn.execute(_PURGE, finished_before, limit)
            return int(status.split()[-1])  # "DELETE <count>"

        return await self._call(purge)

    async def _call(self, fn: Callable[[_Tx], Awaitable[_T]]) -> _T:
        result: _T = await self._write("call", fn)
        return result

    async def _write(self, kind: str, payload: Any) -> Any:
        if not self._opened:
            raise StoreUnavailableError(f"{self._description} is not open")
        try:
            return await self._commits.submit(kind, payload)
        except ClosedError as exc:
            raise StoreUnavailableError(f"{self._description} is closed") from exc

    async def _run_batch(self, batch: Sequence[WriteRequest]) -> list[Any]:
        for attempt in range(_TXN_RETRIES):
            try:
                results = await self._transaction(batch)
                return [self._rejected(r) if isinstance(r, RequestFailed) else r for r in results]
            except _RETRYABLE as exc:
                if attempt + 1 < _TXN_RETRIES:
                    log.warning("task transaction rolled back, retrying: %s", exc)
                    continue
                raise StoreUnavailableError(
                    f"cannot write to {self._description}: {self._cause(exc)}"
                ) from exc
            except Exception as exc:
                if _request_error(exc):  # a batch of one request: the error is its own
                    raise self._rejected(RequestFailed(exc)).error  # noqa: B904
                raise StoreUnavailableError(
                    f"cannot write to {self._description}: {self._cause(exc)}"
                ) from exc
        raise AssertionError("unreachable")

    def _rejected(self, failed: RequestFailed) -> RequestFailed:
        """A request's own failure as the caller sees it (the store's errors pass as they are)."""
        error = failed.error
        if isinstance(error, TasksError):
            return failed
        rejected = WriteRejectedError(
            f"{self._description} refused the write: {self._cause(error)}"
        )
        rejected.__cause__ = error
        return RequestFailed(rejected)

    async def _transaction(self, batch: Sequence[WriteRequest]) -> list[Any]:
        """Run one batch in one transaction.

        The requests are first applied together. If one of them fails by
        itself (:func:`_request_error`), the transaction is rolled back and
        the batch runs again in a new one, each request in a savepoint: the
        failing requests get :class:`RequestFailed`, the others commit.
        """
        try:
            return await self._transaction_once(batch, each=False)
        except Exception as exc:
            if len(batch) == 1 or not _request_error(exc):
                raise
        return await self._transaction_once(batch, each=True)

    async def _transaction_once(self, batch: Sequence[WriteRequest], *, each: bool) -> list[Any]:
        async with self._db.acquire() as conn, conn.transaction():
            tx = _Tx(conn, time.time())
            results = await (self._apply_each(tx, batch) if each else self._apply(tx, batch))
            if tx.notify:
                await conn.execute(_NOTIFY)  # delivered when this transaction commits
        return results

    async def _apply_each(self, tx: _Tx, batch: Sequence[WriteRequest]) -> list[Any]:
        """Apply requests one at a time, each in a savepoint; see :meth:`_transaction`."""
        results: list[Any] = []
        for request in batch:
            notify = tx.notify
            try:
                async with tx.conn.transaction():
                    [result] = await self._apply(tx, [request])
            except Exception as exc:
                if not _request_error(exc):
                    raise
                tx.notify = notify
                result = RequestFailed(exc)
            results.append(result)
        return results

    async def _apply(self, tx: _Tx, batch: Sequence[WriteRequest]) -> list[Any]:
        """Run one batch: inserts, then finishes and progress, then other calls, then claims.

        The same order as SQLite: claims come last so that tasks inserted and
        slots freed in this very transaction are seen by them.
        """
        results: list[Any] = [None] * len(batch)
        by_kind: dict[str, list[int]] = {}
        for index, request in enumerate(batch):
            by_kind.setdefault(request.kind, []).append(index)
        if "insert" in by_kind:
            await self._apply_inserts(tx, batch, by_kind["insert"], results)
        if "finish" in by_kind:
            await self._apply_finishes(tx, batch, by_kind["finish"], results)
        if "progress" in by_kind:
            await self._apply_progress(tx, [batch[i].payload for i in by_kind["progress"]])
        for index in by_kind.get("call", ()):
            results[index] = await batch[index].payload(tx)
        for index in by_kind.get("claim", ()):
            results[index] = await self._apply_claim(tx, *batch[index].payload)
        return results

    async def _apply_inserts(
        self, tx: _Tx, batch: Sequence[WriteRequest], indexes: list[int], results: list[Any]
    ) -> None:
        """Insert every request's tasks in one go; those past their backlog bound fail alone.

        The bound (``max_queued``, 0 for none) is checked against a count made
        under a transaction-scoped advisory lock that every bounded insert
        takes, so concurrent inserters (other processes, other hosts) cannot
        both pass the check: the bound holds exactly.
        """
        accepted: list[int] = []
        queued: int | None = None
        for index in indexes:
            tasks, bound = batch[index].payload
            if bound:
                if queued is None:
                    await tx.conn.execute("SELECT pg_advisory_xact_lock($1)", _BACKLOG_LOCK)
                    queued = int(await tx.conn.fetchval(_COUNT_QUEUED))
                if queued + len(tasks) > bound:
                    results[index] = RequestFailed(queue_full(queued, bound))
                    continue
                queued += len(tasks)
            accepted.append(index)
        all_tasks: list[NewTask] = [t for i in accepted for t in batch[i].payload[0]]
        answers = await _insert_tasks(tx.conn, all_tasks)
        tx.notify = tx.notify or any(a.created for a in answers)
        start = 0
        for index in accepted:
            count = len(batch[index].payload[0])
            results[index] = answers[start : start + count]
            start += count

    async def _apply_finishes(
        self, tx: _Tx, batch: Sequence[WriteRequest], indexes: list[int], results: list[Any]
    ) -> None:
        changes: list[Finish] = [c for i in indexes for c in batch[i].payload]
        columns: list[list[Any]] = [[] for _ in range(12)]
        for change in changes:
            error, progress = change.error, change.progress
            row = (
                change.task_id,
                change.state.value,
                change.result_json,
                None if error is None else _clean(error.type),
                None if error is None else _clean(error.message),
                None if error is None else _clean(error.traceback),
                change.run_at,
                change.refund,
                None if progress is None else progress.current,
                None if progress is None else progress.total,
                None if progress is None else _clean(progress.message),
                change.owner,
            )
            for column, value in zip(columns, row, strict=True):
                column.append(value)
        now = tx.now
        rows = await tx.conn.fetch(_FINISH, *columns, now)
        applied = {row[0] - 1 for row in rows}  # ordinality counts from 1
        if any(_makes_due_work(changes[i], now) for i in applied):
            tx.notify = True
        start = 0
        for index in indexes:
            count = len(batch[index].payload)
            results[index] = [start + n in applied for n in range(count)]
            start += count

    async def _apply_progress(self, tx: _Tx, updates: list[tuple[str, str, Progress]]) -> None:
        # One UPDATE applies at most one row per task: keep each task's latest report.
        latest: dict[tuple[str, str], Progress] = {}
        for task_id, owner, progress in updates:
            latest[task_id, owner] = progress
        await tx.conn.execute(
            _PROGRESS,
            [task_id for task_id, _ in latest],
            [owner for _, owner in latest],
            [p.current for p in latest.values()],
            [p.total for p in latest.values()],
            [_clean(p.message) for p in latest.values()],
        )

    async def _apply_claim(
        self, tx: _Tx, owner: str, queues: list[str], limit: int, lease_seconds: float
    ) -> list[TaskRecord]:
        if limit <= 0:
            return []
        sql, queue_arg = (
            (_CLAIM_ONE_QUEUE, queues[0]) if len(queues) == 1 else (_CLAIM_QUEUES, queues)
        )
        rows = await tx.conn.fetch(sql, tx.now, owner, tx.now + lease_seconds, queue_arg, limit)
        records = [record_from_row(row) for row in rows]
        records.sort(key=lambda r: (-r.priority, r.run_at, r.id))
        return records

    # -- reads ---------------------------------------------------------------

    async def _read(self, sql: str, *args: Any) -> list[Any]:
        try:
            rows: list[Any] = await self._db.fetch(sql, *args)
        except _DB_ERRORS as exc:
            raise StoreUnavailableError(
                f"cannot read from {self._description}: {self._cause(exc)}"
            ) from exc
        return rows

    async def get(self, task_id: str) -> TaskRecord | None:
        """One task by id; see :meth:`Store.get`."""
        rows = await self._read(f"SELECT {COLUMNS} FROM tasks WHERE id = $1", task_id)
        return record_from_row(rows[0]) if rows else None

    async def get_many(self, task_ids: Sequence[str]) -> list[TaskRecord]:
        """Several tasks by id; see :meth:`Store.get_many`."""
        ids = list(task_ids)
        if not ids:
            return []
        rows = await self._read(f"SELECT {COLUMNS} FROM tasks WHERE id = ANY($1::text[])", ids)
        return [record_from_row(row) for row in rows]

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
            " AND queue = ANY($1::text[]) AND run_at > $2",
            list(queues),
            after,
        )
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    async def cancel_requests(self, owner: str) -> list[str]:
        """Tasks asked to stop; see :meth:`Store.cancel_requests`."""
        rows = await self._read(
            "SELECT id FROM tasks WHERE state = 'cancelling' AND lease_owner = $1", owner
        )
        return [row[0] for row in rows]

    async def count_queued(self) -> int:
        """Backlog size; see :meth:`Store.count_queued`."""
        return await shared_rows.count_queued(self._read)

    # octet_length of a stored (possibly compressed) text reads its size, not its content.
    _summary_columns = summary_columns("octet_length({})")

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
        where: list[str] = []
        params: list[Any] = []
        for condition, value in (
            ("state = ${}", None if state is None else state.value),
            ("name = ${}", name),
            ("id < ${}", cursor),
            ("id = ${}", task_id),
        ):
            if value is not None:
                params.append(value)
                where.append(condition.format(len(params)))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        params.append(max(limit, 0))
        return await self._read(
            f"SELECT {columns} FROM tasks {clause} ORDER BY id DESC LIMIT ${len(params)}", *params
        )


async def _insert_tasks(conn: Connection, tasks: Sequence[NewTask]) -> list[Inserted]:
    """Insert in the connection's transaction; idempotency keys as in SQLite.

    Keyed tasks go one by one, in order, so the first of two tasks with one key
    wins; the others go in one statement.
    """
    answers: list[Inserted] = []
    plain: list[NewTask] = []
    for task in tasks:
        if task.idempotency_key is None:
            plain.append(task)
            answers.append(Inserted(task.id, True))
            continue
        new_id = await conn.fetchval(
            _INSERT_ONE,
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
        if new_id is not None:
            answers.append(Inserted(new_id, True))
            continue
        existing = await conn.fetchval(
            "SELECT id FROM tasks WHERE idempotency_key = $1", task.idempotency_key
        )
        if existing is None:  # the conflicting row is not visible to this snapshot
            raise StoreUnavailableError(
                f"idempotency key {task.idempotency_key!r} was taken by a concurrent"
                " transaction this one cannot see; try again"
            )
        answers.append(Inserted(existing, False))
    if plain:
        await conn.execute(
            _INSERT_MANY,
            [t.id for t in plain],
            [t.name for t in plain],
            [t.queue for t in plain],
            [t.args_json for t in plain],
            [t.kwargs_json for t in plain],
            [t.priority for t in plain],
            [t.max_attempts for t in plain],
            [t.run_at for t in plain],
            [t.created_at for t in plain],
        )
    return answers


def _request_error(exc: BaseException) -> bool:
    """Whether ``exc`` is about one request's values, not the database as a whole.

    A value the server or the driver refuses (data exceptions, constraint
    violations) or a store error raised for one request is; a lost
    connection, a timeout or any other server error is not.
    """
    if isinstance(exc, asyncpg.DataError | asyncpg.IntegrityConstraintViolationError):
        return True
    return isinstance(exc, Exception) and not isinstance(exc, _DB_ERRORS)


def _makes_due_work(change: Finish, now: float) -> bool:
    return change.state is State.QUEUED and (change.run_at is None or change.run_at <= now)


async def _select_one(conn: Connection, task_id: str) -> TaskRecord | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM tasks WHERE id = $1", task_id)
    return None if row is None else record_from_row(row)
