"""New-work notifications: ``NOTIFY`` on commit, one ``LISTEN`` connection per store.

Writes that make work available (inserts, retries, releases, requeues) send
:data:`NOTIFY` in their transaction; the server delivers it on commit.
:class:`NewWorkListener` keeps one dedicated connection listening,
reconnects with backoff when it is lost, and then calls every callback once,
since notifications sent meanwhile were missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg

from tasks.store.postgres.connection import Connection, redact
from tasks.store.queries import load_queries

log = logging.getLogger("tasks.store")

# One channel per schema, so stores in different schemas of one database do not
# wake each other. Evaluated by the server on the connection that notifies or
# listens, so the caller's own connection (insert_in) agrees with the store's.
_CHANNEL_SQL = (
    "CASE WHEN current_schema() = 'public' THEN 'tasks_new_work'"
    " ELSE 'tasks_new_work.' || hashtext(current_schema())::text END"
)
NOTIFY = f"SELECT pg_notify({_CHANNEL_SQL}, '')"
"""Wakes every listener of this schema when the transaction that runs it commits."""
_LIMITS_PAYLOAD = "limits"
NOTIFY_LIMITS = f"SELECT pg_notify({_CHANNEL_SQL}, '{_LIMITS_PAYLOAD}')"
"""Like :data:`NOTIFY`, and says a task with limits may now be admitted (one that
held a concurrency slot ended, or one was enqueued): see :mod:`.held`."""
NOTIFY_AFTER_INSERT = (
    f"WITH inserted AS ({load_queries('postgres')['insert_many']} RETURNING 1)"
    f" SELECT pg_notify({_CHANNEL_SQL}, '') FROM (SELECT 1 FROM inserted LIMIT 1) AS any_row"
)
"""``insert_many`` and :data:`NOTIFY` in one statement (one round trip in autocommit)."""

_BACKOFF_MIN = 0.5
_BACKOFF_MAX = 30.0


class NewWorkListener:
    """Calls its callbacks whenever a transaction that made work available commits."""

    def __init__(
        self,
        url: str,
        description: str,
        secrets: list[str],
        *,
        connect_timeout: float,
        server_settings: dict[str, str] | None,
        on_limits: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self._on_limits = on_limits
        """Called before the callbacks on :data:`NOTIFY_LIMITS` and after a reconnect."""
        self.description = description
        self.connect_timeout = connect_timeout
        self._secrets = secrets
        self._server_settings = server_settings
        self.callbacks: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.listening = False
        """Whether the notification connection is currently listening."""

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called and :meth:`stop` was not."""
        return self._task is not None

    def start(self) -> None:
        """Start listening on the running loop (in the background)."""
        self._task = asyncio.get_running_loop().create_task(
            self._listen(), name="tasks-postgres-listen"
        )

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _wake(self) -> None:
        for callback in list(self.callbacks):
            try:
                callback()
            except Exception:
                log.exception("new-work callback %r failed", callback)

    def _notified(self, conn: Connection, pid: int, channel: str, payload: str) -> None:
        if payload == _LIMITS_PAYLOAD and self._on_limits is not None:
            self._on_limits()
        self._wake()

    async def _listen(self) -> None:
        """Keep one connection LISTENing; reconnect with backoff when it is lost."""
        delay = _BACKOFF_MIN
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
                self.listening = was_listening = True
                log.debug("listening on channel %s of %s", channel, self.description)
                if not first_attempt:
                    # Notifications sent while nobody listened are lost: wake up once.
                    log.info("notification connection to %s is back", self.description)
                    if self._on_limits is not None:
                        self._on_limits()
                    self._wake()
                delay = _BACKOFF_MIN
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), timeout=30.0)
                    except TimeoutError:  # a silent network failure shows up here
                        await conn.fetchval("SELECT 1", timeout=self.connect_timeout)
                reason = "connection closed"
            except Exception as exc:  # whatever it was, keep trying
                reason = redact(exc, self._secrets)
            finally:
                self.listening = False
                if conn is not None:
                    await self._close_quietly(conn)
            first_attempt = False
            log.warning(
                "%s notifications from %s (%s); reconnecting in %.1fs",
                "lost" if was_listening else "cannot listen for",
                self.description,
                reason,
                delay,
            )
            await asyncio.sleep(delay)  # backoff, not synchronisation
            delay = min(delay * 2, _BACKOFF_MAX)

    async def _close_quietly(self, conn: Connection) -> None:
        if conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), timeout=self.connect_timeout)
        except BaseException as exc:
            conn.terminate()
            if not isinstance(exc, Exception):
                raise
