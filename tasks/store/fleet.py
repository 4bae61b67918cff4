"""The worker registry's part of the store contract, and its value types.

Each process that runs workers has a row (:class:`WorkerInfo`), refreshed by
its lease heartbeat and removed when it stops cleanly. While registered it
also holds a *liveness mark* that the operating system or the database drops
when the process ends, however it ends: an exclusive ``flock`` on a file
beside the SQLite database, or a session-level advisory lock on a PostgreSQL
connection of its own. Other processes read those marks
(:meth:`WorkerRegistry.owner_liveness`), never a timer, to tell a dead owner
from a slow one.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """Tasks whose lease expired: put back in the queue, failed (attempts used up),
    or cancelled (they had been asked to stop)."""

    requeued: list[str]
    failed: list[str]
    cancelled: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a process records of itself when it registers (``id`` is its lease owner)."""

    id: str
    host: str
    pid: int
    version: str
    queues: tuple[str, ...]
    concurrency: int
    started_at: float


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """A registry row as read back, with the tasks its owner holds now.

    ``running``: ids of the ``running``/``cancelling`` tasks whose lease owner
    it is, oldest start first. ``lost_at``: when another process found it dead
    and recovered its tasks (None otherwise). ``live``: what its liveness mark
    says right now: True (held: the process lives), False (free: it is gone),
    None (cannot be told: no mark recorded, so only its heartbeat's age speaks).
    """

    info: WorkerInfo
    heartbeat_at: float
    lost_at: float | None
    running: tuple[str, ...]
    live: bool | None


def worker_rows(
    found: Sequence[Any], running: Sequence[Any], live: Callable[[Any], bool | None]
) -> builtins.list[WorkerRow]:
    """Rows of the ``workers`` query and ``(owner, task id)`` pairs as :class:`WorkerRow`.

    ``live`` tells a row's liveness (a backend reads it from the row or elsewhere).
    """
    held: dict[str, builtins.list[str]] = {}
    for owner, task_id in running:
        held.setdefault(str(owner), []).append(str(task_id))
    result = []
    for row in found:
        wid, host, pid, version, queues, concurrency, started, beat, lost = row[:9]
        info = WorkerInfo(
            str(wid), str(host), int(pid), str(version), tuple(json.loads(queues)),
            int(concurrency), float(started),
        )  # fmt: skip
        lost_at = None if lost is None else float(lost)
        mine = tuple(held.get(info.id, ()))
        result.append(WorkerRow(info, float(beat), lost_at, mine, live(row)))
    return result


class WorkerRegistry(Protocol):
    """Registry and liveness methods of :class:`~tasks.store.base.Store`."""

    async def register_worker(self, worker: WorkerInfo) -> None:
        """Record ``worker`` (insert, or refresh its row) and hold its liveness mark.

        The mark is held from before the row is written until
        :meth:`unregister_worker` or :meth:`close`, or the process's end.
        Registering the same id again only refreshes the row.
        """

    async def worker_heartbeat(self, owner: str) -> bool:
        """Set ``owner``'s heartbeat to now (and clear a ``lost`` mark); False if no row."""

    async def unregister_worker(self, owner: str) -> None:
        """Delete ``owner``'s row and let go of its liveness mark (a clean stop)."""

    async def workers(self) -> builtins.list[WorkerRow]:
        """Every registry row, oldest start first, with its running tasks and liveness."""

    async def owner_liveness(self) -> dict[str, bool]:
        """Registered owners not marked lost whose liveness is known: True alive, False dead.

        False is only answered once the mark has stayed free long enough that
        a live process could not still be re-taking it (see the backend).
        Owners whose liveness cannot be known are left out.
        """

    async def reclaim_owners(self, owners: Sequence[str], error_message: str) -> Reclaimed:
        """Recover every task held by ``owners`` (known dead), whatever its lease.

        As :meth:`~tasks.store.base.Store.reclaim_expired` does for expired
        leases: running tasks are requeued, or failed with ``error_message``
        when out of attempts; cancelling ones end cancelled. The owners' rows
        are marked lost in the same transaction, and their marks cleared.
        """

    async def prune_workers(self, heartbeat_before: float) -> int:
        """Delete the rows whose last heartbeat is older than ``heartbeat_before``; how many."""

    async def reclaim_expired(self, error_message: str, keep: Collection[str] = ()) -> Reclaimed:
        """Recover the tasks whose lease expired, except those of the owners in ``keep``.

        Running ones are requeued, or failed with ``error_message`` when out of
        attempts (a ``WorkerLostError`` in the error history too); cancelling
        ones (their owner is gone) end cancelled. ``keep`` names owners known
        to be alive: their tasks stay theirs however late their heartbeat.
        """
