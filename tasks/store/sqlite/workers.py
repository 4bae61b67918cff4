"""The worker registry on SQLite: rows in ``tasks_workers``, liveness by lock files.

The write functions take the plain ``sqlite3`` connection first and run in a
group-commit transaction as ``call`` requests (so a heartbeat shares the
lease renewal's transaction when both are submitted together).
:class:`SQLiteWorkers` is mixed into the store; liveness comes from
:mod:`~tasks.store.sqlite.liveness`, which needs no database access at all.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from tasks.store.fleet import Reclaimed, WorkerInfo, WorkerRow, worker_rows
from tasks.store.queries import load_queries
from tasks.store.sqlite import liveness

_SQL = load_queries("sqlite")
log = logging.getLogger("tasks.store")


def register(conn: sqlite3.Connection, worker: WorkerInfo) -> None:
    """Insert or refresh ``worker``'s row."""
    w = worker
    queues = json.dumps(builtins.list(w.queues))
    conn.execute(
        _SQL["worker_register"],
        (w.id, w.host, w.pid, w.version, queues, w.concurrency, w.started_at, time.time()),
    )


def heartbeat(conn: sqlite3.Connection, owner: str) -> bool:
    """Refresh ``owner``'s heartbeat; whether its row exists."""
    return bool(conn.execute(_SQL["worker_heartbeat"], (time.time(), owner)).fetchall())


def remove(conn: sqlite3.Connection, owner: str) -> None:
    """Delete ``owner``'s row."""
    conn.execute(_SQL["worker_remove"], (owner,))


def prune(conn: sqlite3.Connection, heartbeat_before: float) -> int:
    """Delete rows whose last heartbeat is older than ``heartbeat_before``."""
    return len(conn.execute(_SQL["workers_prune"], (heartbeat_before,)).fetchall())


def reclaim_expired(conn: sqlite3.Connection, message: str, keep: Sequence[str]) -> Reclaimed:
    """Recover expired leases except ``keep``'s; see :meth:`Store.reclaim_expired`."""
    now, alive = time.time(), json.dumps(builtins.list(keep))
    failed = conn.execute(_SQL["reclaim_failed"], (now, message, alive)).fetchall()
    requeued = conn.execute(_SQL["reclaim_requeued"], (now, alive)).fetchall()
    cancelled = conn.execute(_SQL["reclaim_cancelled"], (now, alive)).fetchall()
    return Reclaimed([r[0] for r in requeued], [r[0] for r in failed], [r[0] for r in cancelled])


def reclaim_owners(conn: sqlite3.Connection, owners: Sequence[str], message: str) -> Reclaimed:
    """Recover the tasks of dead ``owners`` and mark them lost; see :meth:`Store.reclaim_owners`."""
    now, dead = time.time(), json.dumps(builtins.list(owners))
    failed = conn.execute(_SQL["reclaim_owner_failed"], (now, message, dead)).fetchall()
    requeued = conn.execute(_SQL["reclaim_owner_requeued"], (now, dead)).fetchall()
    cancelled = conn.execute(_SQL["reclaim_owner_cancelled"], (now, dead)).fetchall()
    conn.execute(_SQL["workers_lost"], (now, dead))
    return Reclaimed([r[0] for r in requeued], [r[0] for r in failed], [r[0] for r in cancelled])


class SQLiteWorkers:
    """:class:`~tasks.store.fleet.WorkerRegistry` for SQLite; mixed into the store."""

    path: str
    _owner_locks: dict[str, liveness.OwnerLock]
    """The lock files this store holds, by owner (set by the store)."""

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> builtins.list[Any]:
        raise NotImplementedError

    @property
    def _lock_directory(self) -> str:
        return liveness.lock_directory(self.path)

    async def register_worker(self, worker: WorkerInfo) -> None:
        """Lock this process's file, then write its row; see :meth:`Store.register_worker`.

        A lock file that cannot be created (a read-only directory) is logged and
        skipped: the worker runs, and its liveness is unknown to the others.
        """
        lock = self._owner_locks.setdefault(
            worker.id, liveness.OwnerLock(self._lock_directory, worker.id)
        )
        try:
            await asyncio.to_thread(lock.acquire)
        except OSError as exc:  # no lock: others fall back to this worker's leases
            log.warning("no liveness lock file for %s (%s): lease expiry only", worker.id, exc)
        await self._call(register, worker)

    async def worker_heartbeat(self, owner: str) -> bool:
        """Refresh the heartbeat; see :meth:`Store.worker_heartbeat`."""
        found: bool = await self._call(heartbeat, owner)
        return found

    async def unregister_worker(self, owner: str) -> None:
        """Delete the row, then the lock file; see :meth:`Store.unregister_worker`."""
        try:
            await self._call(remove, owner)
        finally:
            lock = self._owner_locks.pop(owner, None)
            if lock is not None:
                lock.release(remove=True)

    def _release_locks(self) -> None:
        """Let go of every lock file (the store closes): its owners now look dead."""
        for lock in self._owner_locks.values():
            lock.release(remove=False)
        self._owner_locks.clear()

    async def workers(self) -> builtins.list[WorkerRow]:
        """Every row; see :meth:`Store.workers`."""
        found = await self._read(_SQL["workers"])
        running = await self._read(_SQL["workers_running"])
        live = await asyncio.to_thread(liveness.probe, self._lock_directory)
        return worker_rows(found, running, lambda row: live.get(str(row[0])))

    async def owner_liveness(self) -> dict[str, bool]:
        """Owners with a lock file and not yet marked lost; see :meth:`Store.owner_liveness`.

        A lock file whose process died is removed by :meth:`reclaim_owners`
        once its tasks are recovered, so a dead owner is reported until then.
        """
        return await asyncio.to_thread(liveness.probe, self._lock_directory)

    async def reclaim_owners(self, owners: Sequence[str], error_message: str) -> Reclaimed:
        """Recover the dead owners' tasks; see :meth:`Store.reclaim_owners`."""
        chosen = builtins.list(owners)
        if not chosen:
            return Reclaimed([], [])
        result: Reclaimed = await self._call(reclaim_owners, chosen, error_message)
        await asyncio.to_thread(liveness.remove_dead, self._lock_directory, chosen)
        return result

    async def prune_workers(self, heartbeat_before: float) -> int:
        """Delete rows of long-gone processes; see :meth:`Store.prune_workers`."""
        pruned: int = await self._call(prune, heartbeat_before)
        return pruned

    async def reclaim_expired(self, error_message: str, keep: Collection[str] = ()) -> Reclaimed:
        """Recover expired leases of owners not known alive; see :meth:`Store.reclaim_expired`."""
        result: Reclaimed = await self._call(reclaim_expired, error_message, sorted(keep))
        return result
