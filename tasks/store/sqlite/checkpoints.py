"""WAL checkpoints off the write path, on a connection of their own.

The writer runs with ``wal_autocheckpoint=0``, so no commit pays for a
checkpoint (SQLite's automatic one runs inside a commit every 1,000 pages
and was the cause of a ~20 ms p99 enqueue-to-start latency). Instead
:func:`checkpoint_loop`, every :data:`CHECKPOINT_INTERVAL` seconds in which
something was committed, runs a ``PASSIVE`` checkpoint on its own connection
(and aiosqlite thread); it never blocks writers or readers. Under a steady
write load the log never starts over by itself, so once it is longer than
:data:`WAL_RESTART_PAGES` a short ``RESTART`` follows; once the store has
gone quiet, ``TRUNCATE`` empties the file.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable

import aiosqlite

log = logging.getLogger("tasks.store")

CHECKPOINT_INTERVAL = 0.5
"""Seconds between WAL checkpoints while writes go on."""
WAL_RESTART_PAGES = 1000
"""Log size (pages) past which a ``RESTART`` checkpoint follows the passive one."""
RESTART_WAIT_MS = 50
"""How long a ``RESTART`` checkpoint waits for other connections before trying later."""


async def checkpoint_loop(
    path: str,
    checkpointer: Callable[[], aiosqlite.Connection | None],
    commit_count: Callable[[], int],
) -> None:
    """Checkpoint ``path`` until ``checkpointer()`` gives None (the store closed).

    ``commit_count()`` is how many transactions the store has committed: the
    loop checkpoints only after it changed, and truncates once it stops.
    """
    seen = commit_count()
    truncated = True
    while True:
        await asyncio.sleep(CHECKPOINT_INTERVAL)
        conn = checkpointer()
        if conn is None:
            return
        count = commit_count()
        busy = count != seen
        if not busy and truncated:
            continue
        seen = count
        try:
            if busy:
                log_pages = await _checkpoint(conn, "PASSIVE", 0)
                if log_pages > WAL_RESTART_PAGES:
                    await _checkpoint(conn, "RESTART", RESTART_WAIT_MS)
                truncated = False
            else:
                await _checkpoint(conn, "TRUNCATE", 0)
                truncated = True
        except sqlite3.Error as exc:
            log.debug("WAL checkpoint of %s failed: %s", path, exc)


async def _checkpoint(db: aiosqlite.Connection, mode: str, busy_ms: int) -> int:
    """Run a WAL checkpoint waiting up to ``busy_ms`` for others; the log's size in pages."""
    await db.execute(f"PRAGMA busy_timeout={busy_ms}")
    [(_, log_pages, _)] = list(await db.execute_fetchall(f"PRAGMA wal_checkpoint({mode})"))
    return int(log_pages)
