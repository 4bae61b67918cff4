"""Built-in demo tasks, for trying the API from curl and for tests."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from app.extensions import tasks
from tasks import current_task


@tasks.task(name="demo.sleep")
async def sleep(seconds: float) -> float:
    """Sleep on the event loop; returns the seconds slept."""
    await asyncio.sleep(seconds)
    return seconds


@tasks.task(name="demo.blocking_sleep")
def blocking_sleep(seconds: float) -> float:
    """Block a pool thread (stands in for blocking I/O); stops early if cancelled."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not current_task().cancelled:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return seconds


@tasks.task(name="demo.cpu", executor="process")
def cpu(n: int) -> str:
    """CPU work in a pool process: the SHA-256 hex digest of ``n`` rounds of hashing."""
    digest = b"quart-taskqueue"
    for _ in range(n):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


@tasks.task(name="demo.fail", max_attempts=1)
async def fail(message: str) -> None:
    """Always raises, to show how errors are recorded."""
    raise RuntimeError(message)


@tasks.task(name="demo.progress")
async def progress(steps: int, delay: float) -> str:
    """Report progress after each of ``steps`` steps of ``delay`` seconds."""
    context = current_task()
    for step in range(1, steps + 1):
        await asyncio.sleep(delay)
        context.progress(step, steps, f"step {step} of {steps}")
    return f"{steps} steps done"


@tasks.task(name="demo.echo")
async def echo(value: Any) -> Any:
    """Returns its argument unchanged."""
    return value
