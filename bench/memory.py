"""Memory: resident size after 10,000 tasks and after 100,000 tasks, in one process.

Tasks are no-ops, enqueued in batches while the workers run them; finished
tasks stay in the database (retention is days by default). A leak per task
shows as growth between the two readings.
"""

from __future__ import annotations

import gc
import os
import time

from bench.common import Figure, Options, engine, options_from, parser, rss_mb, run
from tasks.store.sqlite import sqlite_path

FIRST = 10_000
TOTAL = 100_000
CHUNK = 1_000


async def measure(options: Options, first: int = FIRST, total: int = TOTAL) -> list[Figure]:
    """Run ``total`` tasks; return RSS after ``first`` and after ``total``."""
    async with engine(options, concurrency=100) as bench:
        noop = bench.tasks.get_task("noop")
        done = 0
        readings: dict[int, float] = {}
        start = time.perf_counter()
        while done < total:
            await bench.tasks.enqueue_many([noop.call() for _ in range(CHUNK)])
            done += CHUNK
            await bench.until_finished(done)
            if done in (first, total):
                gc.collect()
                readings[done] = rss_mb()
        elapsed = time.perf_counter() - start
        wal = _wal_mb(bench.app.config["TASKS_DATABASE_URL"])
    growth = readings[total] - readings[first]
    return [
        Figure(f"RSS after {first:,} tasks", readings[first], "MB"),
        Figure(f"RSS after {total:,} tasks", readings[total], "MB"),
        Figure(f"RSS growth {first:,} -> {total:,}", growth, "MB", "<= 20"),
        Figure(f"(rate over {total:,} tasks, batches of {CHUNK:,})", total / elapsed, "tasks/s"),
        *([] if wal is None else [Figure(f"SQLite WAL file after {total:,} tasks", wal, "MB")]),
    ]


def _wal_mb(url: str) -> float | None:
    """Size of the SQLite write-ahead log (bounded by the checkpointer), or None."""
    if not url.startswith("sqlite:"):
        return None
    path = sqlite_path(url) + "-wal"
    return os.path.getsize(path) / 1e6 if os.path.exists(path) else 0.0


def main() -> None:
    """Command line entry point."""
    p = parser(__doc__ or "")
    p.add_argument("--tasks", type=int, default=TOTAL)
    args = p.parse_args()
    options = options_from(args)
    run(lambda: measure(options, FIRST, args.tasks), options)


if __name__ == "__main__":
    main()
