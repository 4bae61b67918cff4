"""Shared pieces of the benchmarks: arguments, a throwaway database, a running engine.

Every figure runs in one process against a real database: a SQLite file in WAL
mode in a fresh directory on disk (never tmpfs), or a dedicated PostgreSQL
schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from quart import Quart

from tasks import Tasks
from tasks.events import TaskEvent

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
DONE_KINDS = frozenset({"succeeded", "failed"})


@dataclass(frozen=True)
class Options:
    """Settings common to every benchmark."""

    backend: str = "sqlite"
    synchronous: str = "NORMAL"
    uvloop: bool = False
    directory: str | None = None
    prefetch: int = 0


@dataclass
class Figure:
    """One measured number, printed as a table row."""

    name: str
    value: float
    unit: str
    target: str = ""
    note: str = ""

    def line(self) -> str:
        """The figure as one aligned line of text."""
        return f"{self.name:<52} | {self.value:>10.2f} | {self.unit:<8} | {self.target}"


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark accepts."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument(
        "--synchronous",
        default="NORMAL",
        choices=["NORMAL", "FULL"],
        help="SQLite synchronous pragma (NORMAL: durable against process crashes;"
        " FULL: against power loss)",
    )
    p.add_argument("--uvloop", action="store_true", help="run on uvloop (if installed)")
    p.add_argument(
        "--prefetch", type=int, default=0, help="TASKS_PREFETCH: tasks claimed ahead (default 0)"
    )
    p.add_argument(
        "--dir", dest="directory", help="directory for the SQLite file (default: a temp dir)"
    )
    return p


def options_from(args: argparse.Namespace) -> Options:
    """The common options out of parsed arguments."""
    return Options(args.backend, args.synchronous, args.uvloop, args.directory, args.prefetch)


def run(main: Callable[[], Coroutine[Any, Any, list[Figure]]], options: Options) -> list[Figure]:
    """Run one benchmark's coroutine on a fresh loop (uvloop if asked) and print its figures.

    ``BENCH_LOG_LEVEL`` (default WARNING) sets the logging level; at INFO each
    task's start and end lines go to stderr, as a server's would.
    """
    logging.basicConfig(level=os.environ.get("BENCH_LOG_LEVEL", "WARNING").upper())
    figures: list[Figure]
    if options.uvloop:
        import uvloop  # type: ignore[import-not-found, unused-ignore]

        figures = uvloop.run(main())
    else:
        figures = asyncio.run(main())
    for figure in figures:
        print(figure.line(), flush=True)
    return figures


def rss_mb() -> float:
    """Resident set size of this process in MB (from /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (``fraction`` in 0..1)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def _filesystem_type(path: str) -> str:
    path = os.path.realpath(path)
    best, kind = "", "?"
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            mount, fstype = parts[1], parts[2]
            if path.startswith(mount) and len(mount) > len(best):
                best, kind = mount, fstype
    return kind


@contextlib.asynccontextmanager
async def database(options: Options) -> AsyncIterator[str]:
    """A fresh database URL; everything in it is removed afterwards."""
    if options.backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="tasks-bench-", dir=options.directory)
        if _filesystem_type(folder) == "tmpfs":
            print(f"warning: {folder} is on tmpfs, figures will flatter SQLite", file=sys.stderr)
        try:
            yield f"sqlite:///{os.path.join(folder, 'bench.sqlite3')}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    import asyncpg  # type: ignore[import-untyped, unused-ignore]

    schema = f"tasks_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"{POSTGRES_URL}?search_path={schema}"
        finally:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()


@dataclass
class Bench:
    """A running engine with the benchmark tasks registered, and a completion counter."""

    app: Quart
    tasks: Tasks
    started: dict[int, float] = field(default_factory=dict)
    finished: int = 0
    failed: int = 0
    _target: int = 0
    _reached: asyncio.Event = field(default_factory=asyncio.Event)

    def _on_event(self, event: TaskEvent) -> None:
        if event.kind in DONE_KINDS:
            self.finished += 1
            if event.kind == "failed":
                self.failed += 1
            if self.finished >= self._target:
                self._reached.set()

    async def until_finished(self, count: int, timeout: float = 300.0) -> None:
        """Wait until ``count`` tasks in total have reached a final outcome."""
        self._target = count
        if self.finished >= count:
            return
        self._reached.clear()
        async with asyncio.timeout(timeout):
            await self._reached.wait()
        if self.failed:
            raise RuntimeError(f"{self.failed} benchmark tasks failed")


@contextlib.asynccontextmanager
async def engine(options: Options, **settings: Any) -> AsyncIterator[Bench]:
    """Start a Quart app with the benchmark tasks on a fresh database; stop it afterwards.

    ``settings`` are ``TASKS_*`` settings in lower case (``concurrency=100``).
    """
    async with database(options) as url:
        app = Quart("bench")
        app.config.update(
            TASKS_DATABASE_URL=url,
            TASKS_SQLITE_SYNCHRONOUS=options.synchronous,
            TASKS_PREFETCH=options.prefetch,
            **{f"TASKS_{key.upper()}": value for key, value in settings.items()},
        )
        tasks = Tasks()
        bench = Bench(app, tasks)

        @tasks.task(name="noop", max_attempts=1)
        async def noop() -> None:
            return None

        @tasks.task(name="nap", max_attempts=1)
        async def nap(seconds: float) -> None:
            await asyncio.sleep(seconds)

        @tasks.task(name="capped", max_attempts=1, concurrency=50)
        async def capped() -> None:
            return None

        @tasks.task(name="per_key", max_attempts=1, concurrency=1, concurrency_key=lambda k: k)
        async def per_key(k: int) -> None:
            return None

        @tasks.task(name="throttled", max_attempts=1, rate_limit="1/h")
        async def throttled() -> None:
            return None

        @tasks.task(name="rated", max_attempts=1, rate_limit="1000000/s")
        async def rated() -> None:
            return None

        @tasks.task(name="mark", max_attempts=1)
        async def mark(n: int) -> None:
            bench.started[n] = time.perf_counter()

        tasks.add_listener(bench._on_event)
        tasks.init_app(app)
        if os.environ.get("BENCH_METRICS"):  # the HTTP layer's /metrics counters and probes
            from tasks.web import TasksWeb

            TasksWeb(tasks).init_app(app)
        async with app.test_app():
            yield bench
