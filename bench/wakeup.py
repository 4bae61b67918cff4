"""Cross-process start latency: enqueue in this process, start in another one.

A standalone worker (``python -m tasks worker bench.wakeup:create_app``) runs
each task; its body returns ``time.time()`` as its first statement. Latency
is that stamp minus the ``time.time()`` taken just before ``enqueue`` here:
the enqueue's commit, the wake-up (SQLite: a datagram to the worker's
socket; PostgreSQL: NOTIFY), the worker's claim and the start. Both stamps
come from this machine's clock.

Two producers:

- ``web``: this process has no workers (``TASKS_WORKERS=false``), as a web
  process in front of ``python -m tasks worker``;
- ``busy sibling``: this process has workers too (as a sibling of
  ``hypercorn -w 2``), but its one slot is held by a long task, so the other
  process must start the new ones.

Tasks are enqueued ``--pause`` seconds apart, so the worker is idle each
time and its fallback poll (at most every ``TASKS_POLL_INTERVAL``, 1 s, the
default) cannot be what finds them. Then the worker's CPU over ``--idle``
seconds with nothing to do: what an idle worker costs.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from quart import Quart

from bench.common import Figure, database, options_from, parser, percentile, run
from tasks import Tasks

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = 150
PAUSE = 0.1
IDLE = 3.0

tasks = Tasks()


@tasks.task(name="bench.stamp", max_attempts=1)
async def stamp() -> float:
    """Return the wall-clock time at which the body started."""
    return time.time()


@tasks.task(name="bench.hold", max_attempts=1)
async def hold(seconds: float) -> None:
    """Keep a worker slot busy."""
    await asyncio.sleep(seconds)


def create_app(config: dict[str, Any] | None = None) -> Quart:
    """The benchmark app (loaded by the worker process too)."""
    app = Quart("wakeup")
    app.config["TASKS_APP_IMPORT"] = "bench.wakeup:create_app"
    app.config.update(config or {})
    tasks.init_app(app)
    return app


def _start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKS_")}
    env.update(TASKS_DATABASE_URL=url, TASKS_POOL_SIZE="4", TASKS_QUEUES="default")
    command = [sys.executable, "-m", "tasks", "worker", "bench.wakeup:create_app"]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*command, "--concurrency", "4"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _log_text(log: Path) -> str:
    return log.read_text(errors="replace")


async def _wait_ready(worker: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while "worker running for" not in await asyncio.to_thread(_log_text, log):
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited:\n{_log_text(log)}")
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not start within 60 s")
        await asyncio.sleep(0.05)


async def _latencies(samples: int, pause: float) -> list[float]:
    """Milliseconds from just before ``enqueue`` here to the body's start over there."""
    for _ in range(5):  # warm-up: connections, statements, first claims
        await (await stamp.enqueue()).result(30)
    sent = []
    for _ in range(samples):
        await asyncio.sleep(pause)  # the previous task (microseconds) is long done
        before = time.time()
        sent.append((before, await stamp.enqueue()))
    return [(await handle.result(30) - before) * 1000 for before, handle in sent]


async def _producer(url: str, busy: bool, samples: int, pause: float) -> list[float]:
    settings: dict[str, Any] = {"TASKS_DATABASE_URL": url, "TASKS_POOL_SIZE": 2}
    if busy:  # its only slot taken: the other process has to start the tasks
        settings.update(TASKS_WORKERS=True, TASKS_CONCURRENCY=1, TASKS_QUEUES="default")
    else:
        settings.update(TASKS_WORKERS=False)
    app = create_app(settings)
    await app.startup()
    try:
        if busy:
            runtime = tasks.runtime
            holder = await hold.enqueue(3600)
            while runtime.dispatcher is None or holder.id not in runtime.dispatcher.running:
                await asyncio.sleep(0.01)  # not yet ours; the worker may take it instead
                if (await holder.status()).lease_owner not in (None, runtime.owner):
                    await holder.cancel()
                    holder = await hold.enqueue(3600)
        latencies = await _latencies(samples, pause)
        if busy:
            await holder.cancel()
        return latencies
    finally:
        await app.shutdown()


async def measure(backend: str, samples: int, pause: float, idle: float) -> list[Figure]:
    """Both producers against one worker process, then the idle worker's CPU."""
    options = options_from(parser("").parse_args(["--backend", backend]))
    async with database(options) as url:
        log = Path(f"/tmp/bench-wakeup-{os.getpid()}.log")
        worker = _start_worker(url, log)
        try:
            await _wait_ready(worker, log)
            web = await _producer(url, False, samples, pause)
            sibling = await _producer(url, True, samples, pause)
            await asyncio.sleep(2)  # the worker's poll pause grows to its cap
            before = _cpu_seconds(worker.pid)
            await asyncio.sleep(idle)
            idle_cpu = (_cpu_seconds(worker.pid) - before) / idle * 100
        finally:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            os.unlink(log)
    target = "<= 1" if backend == "sqlite" else "<= 2"
    return [
        Figure("cross-process start, web -> worker, p50", percentile(web, 0.5), "ms", target),
        Figure("cross-process start, web -> worker, p99", percentile(web, 0.99), "ms", "<= 5"),
        Figure("cross-process start, busy sibling, p50", percentile(sibling, 0.5), "ms", target),
        Figure("cross-process start, busy sibling, p99", percentile(sibling, 0.99), "ms", "<= 5"),
        Figure("idle worker process CPU", idle_cpu, "% core", "near 0"),
    ]


def main() -> None:
    """Command line entry point."""
    p = parser(__doc__ or "")
    p.add_argument("--samples", type=int, default=SAMPLES)
    p.add_argument("--pause", type=float, default=PAUSE)
    p.add_argument("--idle", type=float, default=IDLE)
    args = p.parse_args()
    options = options_from(args)
    run(lambda: measure(options.backend, args.samples, args.pause, args.idle), options)


if __name__ == "__main__":
    main()
