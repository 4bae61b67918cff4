"""Liveness on PostgreSQL: a session-level advisory lock on a connection of its own.

A registered process holds ``pg_advisory_lock(key)`` (``key`` derived from its
owner id, :func:`liveness_key`) on one dedicated connection for as long as it
lives: never a pooled one, which the pool may close or hand to other work.
The server drops the lock when that session ends: at once when the process
dies on a machine that stays up (the kernel closes its socket), and, when a
whole machine vanishes from the network, once the server's TCP keepalive
gives up: the session asks for probes after 5 s idle, every 2 s, 3 of them
(:data:`KEEPALIVE`), so about 11 s. Other processes read ``pg_locks``.

When the connection drops while the process lives (a server restart, a
network blip, ``pg_terminate_backend``) :class:`LivenessSession` reconnects
at once and takes the lock again, retrying every 0.2 s at first; the reader
side (:mod:`~tasks.store.postgres.workers`) only believes a free lock after it
stayed free for :data:`CONFIRM` seconds, which covers that gap.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from tasks.store.postgres.connection import Connection, redact
from tasks.store.queries import load_queries

log = logging.getLogger("tasks.store")

_SQL = load_queries("postgres")
CONFIRM = 0.9
"""Seconds a lock must stay free before its owner is taken for dead."""
KEEPALIVE = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}
"""Server-side TCP keepalive of the liveness session (a vanished client machine)."""
_RETRIES = (0.2, 0.2, 0.2, 0.5, 1.0, 2.0, 5.0)
_CHECK_EVERY = 5.0


def liveness_key(owner: str) -> int:
    """The advisory lock key of ``owner``: 63 bits of a hash, never negative."""
    return int.from_bytes(hashlib.blake2b(owner.encode(), digest_size=8).digest(), "big") >> 1


class LivenessSession:
    """Holds one owner's advisory lock on a dedicated connection, re-taking it when lost."""

    def __init__(
        self,
        url: str,
        owner: str,
        secrets: list[str],
        *,
        connect_timeout: float,
        server_settings: dict[str, str] | None,
        on_held: Callable[[], Awaitable[None]],
    ) -> None:
        self.url = url
        self.owner = owner
        self.key = liveness_key(owner)
        self.connect_timeout = connect_timeout
        self._secrets = secrets
        self._settings = {**(server_settings or {}), **KEEPALIVE}
        self._on_held = on_held
        self._task: asyncio.Task[None] | None = None
        self._held = asyncio.Event()
        self.held_since: float | None = None
        """``time.monotonic()`` when the lock was last taken; None while not held."""
        self._conn: Connection = None
        self._using = asyncio.Lock()

    def start(self) -> None:
        """Start holding the lock (in the background)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._hold(), name=f"tasks-liveness-{self.owner}"
            )

    async def wait_held(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the lock; whether it is held."""
        try:
            await asyncio.wait_for(self._held.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def fetch(self, sql: str, *args: object) -> list[Any] | None:
        """Run a read on the session's connection while it holds the lock; None otherwise.

        The liveness probe runs here every half second: on one connection its
        prepared statement is cached once, not once per pooled connection.
        """
        conn = self._conn
        if conn is None or self.held_since is None:
            return None
        async with self._using:
            rows: list[Any] = await conn.fetch(sql, *args, timeout=self.connect_timeout)
            return rows

    async def stop(self) -> None:
        """Close the session: the lock goes with it."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _hold(self) -> None:
        failures = 0
        while True:
            conn: Connection = None
            lost = asyncio.Event()
            reason = "connection closed"
            try:
                conn = await asyncpg.connect(
                    self.url, timeout=self.connect_timeout, server_settings=self._settings
                )
                conn.add_termination_listener(lambda _conn, event=lost: event.set())
                # An earlier session of ours may still hold it (the server has not
                # noticed yet that its connection is gone): the server waits for it.
                await conn.execute(_SQL["liveness_lock"], self.key)
                self._conn = conn
                self.held_since = time.monotonic()
                self._held.set()
                failures = 0
                await self._announce()
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), timeout=_CHECK_EVERY)
                    except TimeoutError:  # a silent network failure shows up here
                        async with self._using:
                            await conn.fetchval("SELECT 1", timeout=self.connect_timeout)
            except Exception as exc:  # whatever it was, take the lock again
                reason = redact(exc, self._secrets)
            finally:
                self._conn = None
                self.held_since = None
                self._held.clear()
                if conn is not None:
                    conn.terminate()
            delay = _RETRIES[min(failures, len(_RETRIES) - 1)]
            failures += 1
            log.warning(
                "liveness session of %s lost (%s); taking it again in %.1fs",
                self.owner,
                reason,
                delay,
            )
            await asyncio.sleep(delay)  # retry pause

    async def _announce(self) -> None:
        try:
            await self._on_held()
        except Exception as exc:
            log.warning("could not record the liveness key of %s: %s", self.owner, exc)
