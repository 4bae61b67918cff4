"""Wake-up latency on PostgreSQL: enqueue here, start in a worker process.

This process enqueues tasks one at a time (its own workers are off). A
standalone worker (``python -m tasks worker bench.pg_wakeup:create_app``)
runs each one; the task body returns ``time.time()`` as its first statement.
Latency is that stamp minus the ``time.time()`` taken just before
``enqueue``: enqueue commit, NOTIFY, claim and start, across processes.

Tasks are enqueued ``--pause`` seconds apart; each body takes microseconds,
so every task finds an idle worker waiting. The worker's fallback poll backs
off from 20 ms after each claim (up to 30 s here): with ``--pause 0.45`` no
poll falls near an enqueue, so every wake-up is LISTEN/NOTIFY's. Both stamps
come from the same machine's clock.

Run: ``.venv/bin/python -m bench.pg_wakeup [--samples 100] [--pause 0.45]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from quart import Quart

from tasks import Tasks

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

tasks = Tasks()


@tasks.task(name="bench.stamp", max_attempts=1)
async def stamp() -> float:
    """Return the wall-clock time at which the body started."""
    return time.time()


def create_app(config: dict[str, Any] | None = None) -> Quart:
    """The benchmark app: just ``bench.stamp`` (loaded by the worker process too)."""
    app = Quart("pg_wakeup")
    app.config["TASKS_APP_IMPORT"] = "bench.pg_wakeup:create_app"
    app.config.update(config or {})
    tasks.init_app(app)
    return app


def _with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["search_path"] = schema
    return urlunsplit(parts._replace(query=urlencode(query)))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    """``python -m tasks worker bench.pg_wakeup:create_app`` on ``url``, output to ``log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKS_")}
    env.update(TASKS_DATABASE_URL=url, TASKS_POLL_INTERVAL="30", TASKS_POOL_SIZE="4")
    command = [sys.executable, "-m", "tasks", "worker", "bench.pg_wakeup:create_app"]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*command, "--concurrency", "4"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _worker_ready(worker: subprocess.Popen[bytes], log: Path) -> bool:
    if worker.poll() is not None:
        raise SystemExit(f"the worker exited:\n{log.read_text(errors='replace')}")
    return "worker running for" in log.read_text(errors="replace")


async def _wait_worker(worker: subprocess.Popen[bytes], log: Path) -> None:
    """Until the worker says it runs, failing if it exits first."""
    deadline = time.monotonic() + 60
    while not await asyncio.to_thread(_worker_ready, worker, log):
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not start within 60 s")
        await asyncio.sleep(0.05)


async def measure(url: str, samples: int, pause: float, log: Path) -> list[float]:
    """Latencies (seconds) of ``samples`` enqueue-to-start round trips."""
    worker = await asyncio.to_thread(start_worker, url, log)
    app = create_app({"TASKS_DATABASE_URL": url, "TASKS_WORKERS": False, "TASKS_POOL_SIZE": 2})
    try:
        await app.startup()
        try:
            await _wait_worker(worker, log)
            for _ in range(5):  # warm-up: connections, first claims
                await (await stamp.enqueue()).result(30)
            sent = []
            for _ in range(samples):
                await asyncio.sleep(pause)  # the previous task (microseconds) is long done
                before = time.time()
                sent.append((before, await stamp.enqueue()))
            return [await handle.result(30) - before for before, handle in sent]
        finally:
            await app.shutdown()
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


async def run(base_url: str, samples: int, pause: float) -> list[float]:
    """Measure in a throwaway schema of ``base_url``, dropped afterwards."""
    schema = f"bench_wakeup_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(base_url)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        with tempfile.TemporaryDirectory(prefix="pg-wakeup-") as folder:
            return await measure(
                _with_schema(base_url, schema), samples, pause, Path(folder) / "worker.log"
            )
    finally:
        with contextlib.suppress(Exception):
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


def main(argv: list[str] | None = None) -> None:
    """Print p50/p90/p99/max enqueue-to-start latency across processes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=POSTGRES_URL, help="PostgreSQL URL (BENCH_POSTGRES_URL)")
    parser.add_argument("--samples", type=int, default=100, help="tasks measured (default 100)")
    parser.add_argument(
        "--pause", type=float, default=0.45, help="seconds between two enqueues (default 0.45)"
    )
    args = parser.parse_args(argv)
    if args.samples < 1 or args.pause < 0:
        parser.error("--samples must be positive and --pause not negative")
    latencies = asyncio.run(run(args.url, args.samples, args.pause))
    ms = [value * 1000 for value in latencies]
    print(f"PostgreSQL wake-up, enqueue here -> start in a worker process ({len(ms)} tasks)")
    print(f"{'p50':<6} {_percentile(ms, 50):8.2f} ms   (target < 20 ms)")
    print(f"{'p90':<6} {_percentile(ms, 90):8.2f} ms")
    print(f"{'p99':<6} {_percentile(ms, 99):8.2f} ms")
    print(f"{'max':<6} {max(ms):8.2f} ms")
    print(f"{'mean':<6} {statistics.fmean(ms):8.2f} ms")


if __name__ == "__main__":
    main()
