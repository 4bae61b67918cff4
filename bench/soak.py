"""Soak: 100,000 no-op tasks through one process; memory and database size stay bounded.

    .venv/bin/python -m bench.soak            # or: python bench/soak.py [--tasks N]

Enqueues in batches while the workers run, and prints the resident memory
(RSS) at the start, after the first 10,000 tasks and at the end, then runs
retention with a short TTL and prints the database size before and after,
and after a second round of tasks (freed pages are reused, so the file does
not keep growing). A real SQLite file in a fresh directory on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from quart import Quart

from tasks import TaskEvent, Tasks
from tasks.retention import purge_once

BATCH = 1000


def rss_mib() -> float:
    """Resident memory of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def db_mib(path: Path) -> str:
    """Sizes of the database file and of its write-ahead log."""
    wal = Path(f"{path}-wal")
    wal_size = wal.stat().st_size if wal.exists() else 0
    return f"{path.stat().st_size / 2**20:.1f} MiB + WAL {wal_size / 2**20:.1f} MiB"


def free_share(path: Path) -> float:
    """Share of the database's pages that are free (left by deletes, reused by inserts)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    return float(free / pages) if pages else 0.0


async def soak(total: int, concurrency: int, directory: Path) -> None:
    db = directory / "soak.sqlite3"
    tasks = Tasks(database_url=f"sqlite:///{db}", concurrency=concurrency)

    @tasks.task(name="noop")
    async def noop() -> None:
        return None

    done = 0
    reached = asyncio.Event()
    progressed = asyncio.Event()
    target = 0

    def count(event: TaskEvent) -> None:
        nonlocal done
        if event.kind == "succeeded":
            done += 1
            if done % 100 == 0:
                progressed.set()
            if done >= target:
                reached.set()

    tasks.add_listener(count)
    app = Quart("soak")
    tasks.init_app(app)

    async def run(n: int) -> None:
        nonlocal target
        target = done + n
        reached.clear()
        for start in range(0, n, BATCH):
            await tasks.enqueue_many([noop.call() for _ in range(min(BATCH, n - start))])
            while done < target - n + start - 5 * BATCH:  # keep the backlog bounded
                progressed.clear()
                await progressed.wait()
        await reached.wait()

    async with app.test_app():
        print(f"tasks: {total} no-op, concurrency {concurrency}, database {db}")
        print(f"RSS at start:           {rss_mib():7.1f} MiB")
        began = time.perf_counter()
        first = min(10_000, total)
        await run(first)
        print(f"RSS after {first:>6} tasks: {rss_mib():7.1f} MiB")
        await run(total - first)
        elapsed = time.perf_counter() - began
        print(f"RSS after {total:>6} tasks: {rss_mib():7.1f} MiB ({total / elapsed:,.0f} tasks/s)")
        print(f"database after the run:  {db_mib(db)}")

        rt = tasks.runtime
        rt.config = dataclasses.replace(rt.config, result_ttl=0.001)
        purged = await purge_once(rt)
        print(f"retention removed {purged} tasks; database now {db_mib(db)}", end="")
        print(f" ({free_share(db):.0%} of it free pages, reused by new tasks)")
        await run(first)
        await purge_once(rt)
        print(f"after {first} more tasks and retention: {db_mib(db)}")
        print(f"RSS at the end:          {rss_mib():7.1f} MiB")


def main(argv: list[str] | None = None) -> None:
    """Run the soak and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    directory = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        asyncio.run(soak(args.tasks, args.concurrency, directory))
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(directory)


if __name__ == "__main__":
    main()
