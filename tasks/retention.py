"""Retention: finished tasks older than ``TASKS_RESULT_TTL`` are deleted in small batches."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.runtime import Runtime

log = logging.getLogger("tasks")

BATCH = 500
"""Rows deleted per transaction, so a purge never holds the write lock for long."""


async def purge_once(rt: Runtime) -> int:
    """Delete every expired finished task, one small batch at a time; return the count."""
    total = 0
    cutoff = time.time() - rt.config.result_ttl
    while True:
        deleted = await rt.store.purge_finished(cutoff, BATCH)
        total += deleted
        if deleted < BATCH:
            return total
        await asyncio.sleep(0)


async def purge_forever(rt: Runtime, every: float = 60.0) -> None:
    """Run :func:`purge_once` at startup and then every ``every`` seconds."""
    while True:
        try:
            deleted = await purge_once(rt)
            if deleted:
                log.info("retention removed %d finished tasks", deleted)
        except Exception as exc:
            log.warning("retention purge failed (will retry): %s", exc)
        await asyncio.sleep(min(every, rt.config.result_ttl))
