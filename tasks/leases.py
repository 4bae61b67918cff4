"""Leases: renew our own on a heartbeat, reclaim those of processes that died."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from tasks.events import EventKind, TaskEvent
from tasks.model import State

if TYPE_CHECKING:
    from tasks.runtime import Runtime

log = logging.getLogger("tasks")

WORKER_LOST = "the process running this task died or lost its lease, and no attempts are left"


async def reclaim_expired(rt: Runtime) -> None:
    """Requeue (or fail, when out of attempts) tasks whose lease ran out.

    Tasks that had been asked to stop end cancelled. This process committed
    these outcomes, so it emits their ``failed`` and ``cancelled`` events:
    listeners (metrics, ``on_failure`` callbacks) hear of each once.
    """
    reclaimed = await rt.store.reclaim_expired(WORKER_LOST)
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
    """Heartbeat loop: one write renews every lease this process holds.

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
                lost = await rt.store.renew_leases(
                    rt.owner, dispatcher.claimed_ids, config.lease_seconds
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
