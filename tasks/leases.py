"""Leases: renew our own on a heartbeat, reclaim those of processes that died.

Two ways to find a dead process's tasks: its liveness mark is free
(:func:`watch_owners`, within about a second of its death; see
:mod:`tasks.fleet`), or its lease expired while nothing tells whether it lives
(:func:`reclaim_expired`, the fallback). Both end the same way: requeued, or
failed with ``WorkerLostError`` when out of attempts, or cancelled if asked to stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from tasks.events import EventKind, TaskEvent
from tasks.fleet import PRUNE_AFTER, PRUNE_EVERY, WATCH_EVERY, alive_owners
from tasks.model import State

if TYPE_CHECKING:
    from tasks.runtime import Runtime
    from tasks.store import Reclaimed

log = logging.getLogger("tasks")

WORKER_LOST = "the process running this task died or lost its lease, and no attempts are left"


async def reclaim_expired(rt: Runtime) -> None:
    """Requeue (or fail, when out of attempts) tasks whose lease ran out.

    Owners known to be alive (their liveness mark is held, see
    :mod:`tasks.fleet`) keep their tasks however late their heartbeat: a
    process whose event loop was blocked for longer than the lease does not
    see its tasks run a second time.
    """
    reclaimed = await rt.store.reclaim_expired(WORKER_LOST, await alive_owners(rt))
    await report_reclaimed(rt, reclaimed)


async def report_reclaimed(rt: Runtime, reclaimed: Reclaimed) -> None:
    """Log reclaimed tasks, wake the dispatcher, emit ``failed``/``cancelled`` events.

    Tasks that had been asked to stop end cancelled. This process committed
    these outcomes, so it emits their events: listeners (metrics,
    ``on_failure`` callbacks) hear of each once.
    """
    if reclaimed.requeued or reclaimed.failed:
        log.warning(
            "reclaimed tasks of lost workers: %d requeued, %d failed (out of attempts)",
            len(reclaimed.requeued),
            len(reclaimed.failed),
        )
        rt.wake()
    if reclaimed.cancelled:
        log.warning("%d tasks asked to stop lost their worker: cancelled", len(reclaimed.cancelled))
    ended = [*reclaimed.failed, *reclaimed.cancelled]
    if ended:
        try:
            records = await rt.store.get_many(ended)
        except Exception as exc:
            log.warning("could not read the ended tasks back; no events for them: %s", exc)
            return
        for record in records:
            kind: EventKind = "cancelled" if record.state == State.CANCELLED else "failed"
            rt.bus.emit(TaskEvent(kind, record.id, record.name))


async def keep_leases(rt: Runtime) -> None:
    """Heartbeat loop: one write renews every lease this process holds and its registry row.

    A task whose lease is no longer ours (cancelled elsewhere, or reclaimed
    after a stall) is stopped here. Expired leases of other processes are
    reclaimed on the same beat.
    """
    config = rt.config
    while True:
        await asyncio.sleep(config.heartbeat_seconds)
        dispatcher = rt.dispatcher
        try:
            if dispatcher is not None:
                # Submitted together, the renewal and the registry heartbeat share
                # one group-commit transaction.
                lost, _ = await asyncio.gather(
                    rt.store.renew_leases(rt.owner, dispatcher.claimed_ids, config.lease_seconds),
                    rt.fleet.beat() if rt.fleet is not None else asyncio.sleep(0),
                )
                for task_id in await _taken_away(rt, lost):
                    if dispatcher.cancel_local(task_id, "lost"):
                        log.warning("stopped task %s: it was cancelled or reassigned", task_id)
            await reclaim_expired(rt)
        except Exception as exc:
            log.warning("lease heartbeat failed (will retry): %s", exc)


async def _taken_away(rt: Runtime, lost: set[str]) -> list[str]:
    """Of the ids a renewal did not find, those really taken from us.

    A task whose outcome this process committed just before the renewal (or
    in the same transaction) is no longer running either; stopping it would
    only cut its outcome's bookkeeping short. Cancelled tasks and tasks now
    running under another owner are the ones to stop.
    """
    if not lost:
        return []
    records = await rt.store.get_many(sorted(lost))
    return [
        r.id
        for r in records
        if r.state == State.CANCELLED or (r.state == State.RUNNING and r.lease_owner != rt.owner)
    ]


async def watch_owners(rt: Runtime) -> None:
    """Loop: recover at once the tasks of every owner whose liveness mark says it died.

    Every :data:`~tasks.fleet.WATCH_EVERY` seconds: on SQLite a lock probe per
    lock file, on PostgreSQL one query; nothing is written unless someone died.
    Old registry rows are pruned on the way.
    """
    pruned_at = time.monotonic()
    while True:
        await asyncio.sleep(WATCH_EVERY)  # the probe's period
        try:
            liveness = await rt.store.owner_liveness()
            dead = sorted(o for o, alive in liveness.items() if not alive and o != rt.owner)
            if dead:
                reclaimed = await rt.store.reclaim_owners(dead, WORKER_LOST)
                log.warning("worker processes gone: %s", ", ".join(dead))
                await report_reclaimed(rt, reclaimed)
            if time.monotonic() - pruned_at >= PRUNE_EVERY:
                pruned_at = time.monotonic()
                await rt.store.prune_workers(time.time() - PRUNE_AFTER)
        except Exception as exc:
            log.warning("checking other workers' liveness failed (will retry): %s", exc)
