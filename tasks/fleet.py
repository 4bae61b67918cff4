"""The worker registry, and recovering dead processes' tasks as soon as they die.

Every process that runs workers registers itself at startup (:class:`Fleet`),
refreshes its row with the lease heartbeat and removes it when it stops
cleanly. While registered it holds a liveness mark the operating system or
the database drops when the process ends (a lock file on SQLite, an advisory
lock session on PostgreSQL; see :mod:`tasks.store.fleet`).

:func:`tasks.leases.watch_owners` reads the other owners' marks every
:data:`WATCH_EVERY` seconds and recovers the tasks of a dead one at once.
Owners known to be alive keep their tasks however late their heartbeat
(:func:`alive_owners`). :func:`status` tells ``alive`` from ``lost`` for
``GET /tasks/workers`` and ``workers``. Rows of processes gone for
:data:`PRUNE_AFTER` seconds are deleted.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal

from tasks.model import iso
from tasks.store.fleet import WorkerInfo, WorkerRow

if TYPE_CHECKING:
    from tasks.runtime import Runtime
    from tasks.store import Store

log = logging.getLogger("tasks")

WATCH_EVERY = 0.5
"""Seconds between two looks at the other owners' liveness marks."""
PRUNE_AFTER = 3600.0
"""A row whose heartbeat is this many seconds old is deleted (its process is long gone)."""
PRUNE_EVERY = 60.0
"""Seconds between two prunings of old rows (by each process with workers)."""
Status = Literal["alive", "lost"]


def package_version() -> str:
    """The installed version of quart-taskqueue (``unknown`` when not installed)."""
    try:
        return metadata.version("quart-taskqueue")
    except metadata.PackageNotFoundError:
        return "unknown"


class Fleet:
    """This process's registry row: register, heartbeat, unregister."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.info = WorkerInfo(
            id=rt.owner,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=package_version(),
            queues=tuple(rt.config.queues),
            concurrency=rt.config.concurrency,
            started_at=time.time(),
        )

    async def register(self) -> None:
        """Hold the liveness mark and write the row (before any task is claimed)."""
        await self.rt.store.register_worker(self.info)

    async def beat(self) -> None:
        """Refresh the row; write it again if it was pruned meanwhile.

        A failure is only logged: the lease renewal it shares a transaction
        with must not be lost for it.
        """
        try:
            if not await self.rt.store.worker_heartbeat(self.info.id):
                await self.rt.store.register_worker(self.info)
        except Exception as exc:
            log.warning("worker registry heartbeat failed (will retry): %s", exc)

    async def unregister(self) -> None:
        """Remove the row and the mark (a clean stop); a failure is only logged."""
        try:
            await self.rt.store.unregister_worker(self.info.id)
        except Exception as exc:
            log.warning("could not remove this process from the worker registry: %s", exc)


async def alive_owners(rt: Runtime) -> set[str]:
    """Other owners whose liveness mark is held: their expired leases are not reclaimed.

    This process is not among them: it reclaims its own expired leases right
    after renewing the ones it holds, so only rows it lost track of expire.
    """
    liveness = await rt.store.owner_liveness()
    return {owner for owner, alive in liveness.items() if alive and owner != rt.owner}


def status(row: WorkerRow, now: float, stale_after: float) -> Status:
    """``lost`` if the row is marked lost, its mark is free, or (mark unknown) its heartbeat
    is older than ``stale_after`` seconds; ``alive`` otherwise."""
    if row.lost_at is not None or row.live is False:
        return "lost"
    if row.live is None and now - row.heartbeat_at > stale_after:
        return "lost"
    return "alive"


def worker_json(row: WorkerRow, now: float, stale_after: float) -> dict[str, Any]:
    """One row as ``GET /tasks/workers`` and ``workers --json`` show it."""
    info = row.info
    return {
        "id": info.id,
        "host": info.host,
        "pid": info.pid,
        "version": info.version,
        "queues": list(info.queues),
        "concurrency": info.concurrency,
        "started_at": iso(info.started_at),
        "heartbeat_at": iso(row.heartbeat_at),
        "running": list(row.running),
        "status": status(row, now, stale_after),
    }


async def workers_json(store: Store, stale_after: float) -> list[dict[str, Any]]:
    """Every registered process as :func:`worker_json` shows it, oldest start first."""
    now = time.time()
    return [worker_json(row, now, stale_after) for row in await store.workers()]
