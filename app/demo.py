"""Built-in demo tasks, for trying the API from curl and for tests.

They are the only tasks of the reference app that can be started over HTTP
(``http=True``), so they model what such a task needs: every argument a
client sends is bounded (``Annotated`` with pydantic's ``Field``, checked
before the task is stored: ``POST /tasks`` answers 422 naming the argument),
and a ``timeout`` stops a run that goes wrong, so a client can keep a worker
slot busy for a bounded time only.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Annotated, Any

from pydantic import Field

from app.extensions import tasks
from tasks import current_task

MAX_SLEEP = 600.0
"""Longest ``demo.sleep``/``demo.blocking_sleep``, in seconds."""
MAX_CPU_ROUNDS = 5_000_000
"""Most hashing rounds of ``demo.cpu`` (a few seconds of one CPU)."""
MAX_STEPS = 600
"""Most steps of ``demo.progress``."""
MAX_STEP_DELAY = 1.0
"""Longest pause between two ``demo.progress`` steps, in seconds."""
_MARGIN = 60.0
"""Timeouts are the longest allowed run plus this margin: they stop only runs gone wrong."""

Seconds = Annotated[float, Field(ge=0, le=MAX_SLEEP)]


@tasks.task(name="demo.sleep", http=True, timeout=MAX_SLEEP + _MARGIN)
async def sleep(seconds: Seconds) -> float:
    """Sleep on the event loop; returns the seconds slept."""
    await asyncio.sleep(seconds)
    return seconds


@tasks.task(name="demo.blocking_sleep", http=True, timeout=MAX_SLEEP + _MARGIN)
def blocking_sleep(seconds: Seconds) -> float:
    """Block a pool thread (stands in for blocking I/O); stops early if cancelled."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not current_task().cancelled:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return seconds


@tasks.task(name="demo.cpu", executor="process", http=True, timeout=120)
def cpu(n: Annotated[int, Field(ge=0, le=MAX_CPU_ROUNDS)]) -> str:
    """CPU work in a pool process: the SHA-256 hex digest of ``n`` rounds of hashing."""
    digest = b"quart-taskqueue"
    for _ in range(n):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


@tasks.task(name="demo.fail", max_attempts=1, http=True, timeout=10)
async def fail(message: Annotated[str, Field(max_length=1000)]) -> None:
    """Always raises, to show how errors are recorded."""
    raise RuntimeError(message)


@tasks.task(name="demo.progress", http=True, timeout=MAX_STEPS * MAX_STEP_DELAY + _MARGIN)
async def progress(
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)],
    delay: Annotated[float, Field(ge=0, le=MAX_STEP_DELAY)],
) -> str:
    """Report progress after each of ``steps`` steps of ``delay`` seconds."""
    context = current_task()
    for step in range(1, steps + 1):
        await asyncio.sleep(delay)
        context.progress(step, steps, f"step {step} of {steps}")
    return f"{steps} steps done"


@tasks.task(name="demo.echo", http=True, timeout=10)
async def echo(value: Any) -> Any:
    """Returns its argument unchanged (its size is bounded by ``TASKS_MAX_BODY_BYTES``)."""
    return value


@tasks.task(name="demo.report", timeout=30)
async def report() -> dict[str, int]:
    """How many tasks are in each state: the reference app's periodic task.

    Scheduled by :func:`schedule_report` (``APP_REPORT_SCHEDULE``, every
    minute by default); it fires once per minute however many processes
    serve the app, and shows on the dashboard like any task.
    """
    counts = await tasks.store.count_by_state()
    return {state.value: n for state, n in counts.items() if n}


def schedule_report(cron: str) -> None:
    """Declare ``demo.report``'s schedule (once per process); an empty ``cron`` declares none."""
    if cron and "demo.report" not in tasks.schedules.by_name:
        tasks.schedule(report, cron=cron, name="demo.report")
