"""The app the acceptance tests serve: the reference app plus an execution log and a poison task.

Served with ``hypercorn tests.acceptance.served:app``. Every task start in
every worker process appends ``started <task id> <pid>`` to the file named by
``ACCEPT_EXECUTION_LOG`` (one ``O_APPEND`` write per line, so lines from
several processes never interleave), which lets a test count how many times
each task body began, across kills and restarts.

With ``ACCEPT_FLOW_TASKS=1``, ``accept.limited`` (concurrency 3) and
``accept.rated`` (20 starts a second) can be started over HTTP; they append
``run <task id> <pid> <begin> <end>`` (Unix times) when their body ends, for
the flow-control tests. (Only then: the reference app exposes its demo tasks
alone, which other tests check in this same Python process.)

With ``ACCEPT_WORKFLOW_TASKS=1``, ``POST /accept/chord/<size>`` enqueues a chord
of ``size`` ``accept.part`` steps and one ``accept.total`` step, which appends
``total <task id> <pid> <number of results> <their sum>`` when it runs.

With ``ACCEPT_TICK_EVERY=<seconds>``, the task ``accept.tick`` runs on an
interval schedule (missed slots: ``all``), for the schedule tests.
"""

from __future__ import annotations

import asyncio
import os
import time

from app import create_app
from app.extensions import tasks
from tasks import TaskEvent, current_task

_LOG = os.environ.get("ACCEPT_EXECUTION_LOG")


@tasks.task(name="accept.poison", max_attempts=2)
async def poison() -> None:
    """Kills the serving process, every time (a poison task)."""
    os._exit(1)


@tasks.task(name="accept.block_loop")
async def block_loop(seconds: float) -> float:
    """Blocks the serving process's event loop (CPU-bound code on the loop, a long GC pause)."""
    time.sleep(seconds)  # noqa: ASYNC251 -- the point: nothing else on this loop runs
    return seconds


@tasks.task(name="accept.tick")
async def tick() -> None:
    """A periodic no-op; its slots are read from the store's idempotency keys."""


async def limited() -> None:
    """A short run that logs its interval; never more than 3 at once in the fleet."""
    begin = time.time()
    await asyncio.sleep(0.1)  # the work (long enough for 3 to overlap on a loaded machine)
    _write(f"run {current_task().id} {os.getpid()} {begin!r} {time.time()!r}\n")


async def rated() -> None:
    """A no-op that logs its interval; at most 20 starts a second in the fleet."""
    begin = time.time()
    _write(f"run {current_task().id} {os.getpid()} {begin!r} {time.time()!r}\n")


if os.environ.get("ACCEPT_FLOW_TASKS"):
    tasks.task(name="accept.limited", http=True, timeout=30, concurrency=3)(limited)
    tasks.task(name="accept.rated", http=True, timeout=30, rate_limit="20/s")(rated)


async def part(n: int) -> int:
    """One step of the chord: a short wait (the work), then its number."""
    await asyncio.sleep(0.1 + (n % 5) * 0.05)
    return n


async def total(parts: list[int]) -> int:
    """The chord's last step: logs how many results it got, and their sum."""
    _write(f"total {current_task().id} {os.getpid()} {len(parts)} {sum(parts)}\n")
    return sum(parts)


_WORKFLOWS = bool(os.environ.get("ACCEPT_WORKFLOW_TASKS"))
if _WORKFLOWS:
    part_task = tasks.task(name="accept.part", max_attempts=5)(part)
    total_task = tasks.task(name="accept.total")(total)

if os.environ.get("ACCEPT_TICK_EVERY"):
    tasks.schedule(tick, every=float(os.environ["ACCEPT_TICK_EVERY"]), missed="all")


def _write(line: str) -> None:
    """Append one line to the execution log in one write (lines never interleave)."""
    if not _LOG:
        return
    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _record(event: TaskEvent) -> None:
    if event.kind in ("started", "succeeded"):
        _write(f"{event.kind} {event.task_id} {os.getpid()}\n")


tasks.add_listener(_record)
app = create_app({"TASKS_APP_IMPORT": "tests.acceptance.served:app"})

if _WORKFLOWS:

    @app.post("/accept/chord/<int:size>")
    async def start_chord(size: int) -> dict[str, str]:
        """Enqueue a chord of ``size`` parts and their total; its workflow and final step."""
        chord = tasks.chord([part_task.call(n) for n in range(size)], total_task.then())
        handle = await chord.enqueue()
        return {"workflow": handle.id, "final": handle.last.id}
