"""The worker registry on PostgreSQL: rows in ``tasks_workers``, liveness by advisory locks.

The write functions take the batch's :class:`~tasks.store.postgres.writes.Tx`
first and run in a group-commit transaction as ``call`` requests (so a
heartbeat shares the lease renewal's transaction when both are submitted
together). :class:`PostgresWorkers` is mixed into the store; each owner it
registers holds its lock through a
:class:`~tasks.store.postgres.liveness.LivenessSession`.
"""

from __future__ import annotations

import builtins
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar

from tasks.store.fleet import Reclaimed, WorkerInfo, WorkerRow, worker_rows
from tasks.store.postgres.liveness import CONFIRM, LivenessSession
from tasks.store.postgres.writes import Tx, clean
from tasks.store.queries import load_queries

_SQL = load_queries("postgres")
log = logging.getLogger("tasks.store")
_T = TypeVar("_T")


async def register(tx: Tx, worker: WorkerInfo, key: int | None) -> None:
    """Insert or refresh ``worker``'s row, with its lock key once the lock is held."""
    w = worker
    queues = json.dumps(builtins.list(w.queues))
    await tx.conn.execute(
        _SQL["worker_register"],
        w.id, w.host, w.pid, w.version, queues, w.concurrency, w.started_at, tx.now, key,
    )  # fmt: skip


async def heartbeat(tx: Tx, owner: str) -> bool:
    """Refresh ``owner``'s heartbeat; whether its row exists."""
    return await tx.conn.fetchval(_SQL["worker_heartbeat"], tx.now, owner) is not None


async def remove(tx: Tx, owner: str) -> None:
    """Delete ``owner``'s row."""
    await tx.conn.execute(_SQL["worker_remove"], owner)


async def prune(tx: Tx, heartbeat_before: float) -> int:
    """Delete rows whose last heartbeat is older than ``heartbeat_before``."""
    return len(await tx.conn.fetch(_SQL["workers_prune"], heartbeat_before))


async def reclaim_expired(tx: Tx, message: str | None, keep: list[str]) -> Reclaimed:
    """Recover expired leases except ``keep``'s; see :meth:`Store.reclaim_expired`."""
    failed = await tx.conn.fetch(_SQL["reclaim_failed"], tx.now, message, keep)
    requeued = await tx.conn.fetch(_SQL["reclaim_requeued"], tx.now, keep)
    cancelled = await tx.conn.fetch(_SQL["reclaim_cancelled"], tx.now, keep)
    if failed or requeued or cancelled:  # slots may be free: see postgres/held.py
        tx.held.clear()
    tx.notify = tx.notify or bool(requeued)
    return Reclaimed([r[0] for r in requeued], [r[0] for r in failed], [r[0] for r in cancelled])


async def reclaim_owners(tx: Tx, owners: list[str], message: str | None) -> Reclaimed:
    """Recover the tasks of dead ``owners`` and mark them lost; see :meth:`Store.reclaim_owners`."""
    failed = await tx.conn.fetch(_SQL["reclaim_owner_failed"], tx.now, message, owners)
    requeued = await tx.conn.fetch(_SQL["reclaim_owner_requeued"], tx.now, owners)
    cancelled = await tx.conn.fetch(_SQL["reclaim_owner_cancelled"], tx.now, owners)
    await tx.conn.execute(_SQL["workers_lost"], tx.now, owners)
    if failed or requeued or cancelled:  # slots may be free: see postgres/held.py
        tx.held.clear()
    tx.notify = tx.notify or bool(requeued)
    return Reclaimed([r[0] for r in requeued], [r[0] for r in failed], [r[0] for r in cancelled])


class PostgresWorkers:
    """:class:`~tasks.store.fleet.WorkerRegistry` for PostgreSQL; mixed into the store.

    A free lock is believed only after it stayed free for
    :data:`~tasks.store.postgres.liveness.CONFIRM` seconds, and only while
    this store's own sessions have held their locks at least that long (after
    a server restart every process needs a moment to take its lock again).
    """

    url: str
    connect_timeout: float
    _secrets: list[str]
    _server_settings: dict[str, str] | None
    _sessions: dict[str, LivenessSession]
    _free_since: dict[str, float]

    async def _call(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        raise NotImplementedError

    async def _read(self, sql: str, *args: Any) -> builtins.list[Any]:
        raise NotImplementedError

    async def register_worker(self, worker: WorkerInfo) -> None:
        """Take the lock on a session of its own, then write the row; see the protocol."""
        session = self._sessions.get(worker.id)
        if session is None:
            session = LivenessSession(
                self.url,
                worker.id,
                self._secrets,
                connect_timeout=self.connect_timeout,
                server_settings=self._server_settings,
                on_held=lambda: self._record_key(worker.id),
            )
            self._sessions[worker.id] = session
            session.start()
        held = await session.wait_held(self.connect_timeout)
        await self._call(register, worker, session.key if held else None)

    async def _record_key(self, owner: str) -> None:
        session = self._sessions.get(owner)
        if session is not None:
            await self._read(_SQL["worker_liveness_key"], owner, session.key)

    async def worker_heartbeat(self, owner: str) -> bool:
        """Refresh the heartbeat; see :meth:`Store.worker_heartbeat`."""
        return await self._call(heartbeat, owner)

    async def unregister_worker(self, owner: str) -> None:
        """Delete the row, then close the session; see :meth:`Store.unregister_worker`."""
        try:
            await self._call(remove, owner)
        finally:
            session = self._sessions.pop(owner, None)
            if session is not None:
                await session.stop()

    async def _stop_sessions(self) -> None:
        """Close every liveness session (the store closes): its owners now look dead."""
        sessions = builtins.list(self._sessions.values())
        self._sessions.clear()
        for session in sessions:
            await session.stop()

    async def workers(self) -> builtins.list[WorkerRow]:
        """Every row; see :meth:`Store.workers`."""
        found = await self._read(_SQL["workers"])
        running = await self._read(_SQL["workers_running"])
        return worker_rows(found, running, lambda row: row[9])

    async def owner_liveness(self) -> dict[str, bool]:
        """Owners with a lock key and not marked lost; see :meth:`Store.owner_liveness`."""
        found = await self._probe()
        now = time.monotonic()
        steady = all(
            s.held_since is not None and now - s.held_since >= CONFIRM
            for s in self._sessions.values()
        )
        known: dict[str, bool] = {}
        free_since: dict[str, float] = {}
        for row in found:
            owner, lost_at, live = str(row[0]), row[8], row[9]
            if lost_at is not None or live is None:
                continue
            if live:
                known[owner] = True
                continue
            free_since[owner] = since = self._free_since.get(owner, now)
            if steady and now - since >= CONFIRM:
                known[owner] = False
        self._free_since = free_since
        return known

    async def _probe(self) -> builtins.list[Any]:
        """The ``workers`` rows, read on a liveness session when one is up (else the pool)."""
        for session in builtins.list(self._sessions.values()):
            try:
                rows = await session.fetch(_SQL["workers"])
            except Exception as exc:  # a session going down: the pool answers instead
                log.debug("liveness probe on the session failed: %s", exc)
                continue
            if rows is not None:
                return rows
        return await self._read(_SQL["workers"])

    async def reclaim_owners(self, owners: Sequence[str], error_message: str) -> Reclaimed:
        """Recover the dead owners' tasks; see :meth:`Store.reclaim_owners`."""
        chosen = builtins.list(owners)
        if not chosen:
            return Reclaimed([], [])
        return await self._call(reclaim_owners, chosen, clean(error_message))

    async def prune_workers(self, heartbeat_before: float) -> int:
        """Delete rows of long-gone processes; see :meth:`Store.prune_workers`."""
        return await self._call(prune, heartbeat_before)

    async def reclaim_expired(self, error_message: str, keep: Collection[str] = ()) -> Reclaimed:
        """Recover expired leases of owners not known alive; see :meth:`Store.reclaim_expired`."""
        return await self._call(reclaim_expired, clean(error_message), sorted(keep))
