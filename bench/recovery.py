"""Crash recovery: how long after ``kill -9`` a live process has requeued the dead one's tasks.

Two ``python -m tasks worker`` processes on one database: a survivor (queue
``default``, idle) and a victim serving queue ``victim``. Per sample a new
victim starts, claims 4 long tasks, and is killed with SIGKILL; this process
polls the store (every 5 ms) until none of those tasks is held by the victim
any more: the survivor found it dead (lock file / advisory-lock session) and
requeued them. Leases are 60 s, so a figure near a second is the liveness
path, not lease expiry. The victim serves its own queue only so that the
requeued tasks stay visible as ``queued``.

Run: ``.venv/bin/python -m bench.recovery [--backend postgres] [--samples 5]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from quart import Quart

from bench.common import Figure, database, median, options_from, parser, run
from tasks import Tasks
from tasks.model import NewTask, State, new_id
from tasks.store import Store, create_store

ROOT = Path(__file__).resolve().parents[1]
HELD = 4
tasks = Tasks()


@tasks.task(name="bench.hold", max_attempts=3)
async def hold() -> None:
    """Holds its worker's slot (far longer than any sample)."""
    await asyncio.sleep(600)


def create_app(config: dict[str, Any] | None = None) -> Quart:
    """The benchmark app: just ``bench.hold`` (loaded by the worker processes)."""
    app = Quart("recovery")
    app.config["TASKS_APP_IMPORT"] = "bench.recovery:create_app"
    app.config.update(config or {})
    tasks.init_app(app)
    return app


def _start(url: str, queues: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKS_")}
    env.update(
        TASKS_DATABASE_URL=url,
        TASKS_LEASE_SECONDS="60",
        TASKS_HEARTBEAT_SECONDS="5",
        TASKS_POLL_INTERVAL="0.05",
        TASKS_POOL_SIZE="3",
    )
    command = [sys.executable, "-m", "tasks", "worker", "bench.recovery:create_app"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*command, "--queues", queues, "--concurrency", str(HELD)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _until(check: Any, timeout: float, what: str, interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout} s")
        await asyncio.sleep(interval)


async def _sample(store: Store, url: str, log: Path) -> float:
    """One victim: start, claim, kill -9; seconds until its tasks are requeued."""
    victim = _start(url, "victim", log)
    try:
        now = time.time()
        ids = [new_id() for _ in range(HELD)]
        rows = [NewTask(i, "bench.hold", "victim", "[]", "{}", 0, 3, now, now, None) for i in ids]
        await store.insert(rows)

        async def held() -> bool:
            found = await store.get_many(ids)
            owners = {r.lease_owner for r in found if r.state == State.RUNNING}
            return (
                len(found) == HELD
                and all(r.state == State.RUNNING for r in found)
                and (owners == {o for o in owners if o and o.split(":")[1] == str(victim.pid)})
            )

        await _until(held, 60, "the victim running its tasks", interval=0.05)
        killed = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)

        async def requeued() -> bool:
            return all(r.lease_owner is None for r in await store.get_many(ids))

        await _until(requeued, 60, "the victim's tasks requeued")
        took = time.monotonic() - killed
        for task_id in ids:
            await store.cancel(task_id)
        return took
    finally:
        if victim.poll() is None:
            victim.kill()
        victim.wait()


async def measure(options: Any, samples: int) -> list[Figure]:
    """Recovery times over ``samples`` victims, with one survivor throughout."""
    async with database(options) as url:
        with tempfile.TemporaryDirectory(prefix="bench-recovery-") as folder:
            log = Path(folder) / "workers.log"
            store = create_store(url, pool_size=2)
            await store.open()
            survivor = _start(url, "default", log)
            try:
                await _until(
                    lambda: asyncio.to_thread(lambda: "worker running for" in log.read_text()),
                    60,
                    "the survivor running",
                    interval=0.05,
                )
                times = [await _sample(store, url, log) for _ in range(samples)]
            finally:
                survivor.send_signal(signal.SIGTERM)
                try:
                    survivor.wait(30)
                except subprocess.TimeoutExpired:
                    survivor.kill()
                await store.close()
    each = json.dumps([round(t, 3) for t in times])
    print(f"kill -9 recovery on {options.backend}, each sample (s): {each}", file=sys.stderr)
    return [
        Figure("kill -9 recovery, p50 (lease 60 s)", median(times), "s", "<= 2 s"),
        Figure("kill -9 recovery, max (lease 60 s)", max(times), "s", ""),
    ]


def main() -> None:
    """Print the p50 and max recovery time after kill -9."""
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=5, help="victims killed (default 5)")
    args, _ = p.parse_known_args()
    options = options_from(args)
    run(lambda: measure(options, args.samples), options)


if __name__ == "__main__":
    main()
