"""Tasks for the engine tests, in an importable module so pool processes can load them."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

from quart import Quart, current_app

from tasks import Tasks, current_task

tasks = Tasks()
calls: list[tuple[str, Any]] = []
gate = threading.Event()
switch_on = threading.Event()
release = threading.Event()
"""Lets the stubborn tasks' bodies return (they ignore ``current_task().cancelled``)."""


@tasks.task(name="add")
async def add(a: int, b: int) -> int:
    calls.append(("add", (a, b)))
    return a + b


@tasks.task(name="whoami")
async def whoami() -> dict[str, Any]:
    return {"app": current_app.name, "task": current_task().id}


@tasks.task(name="thread_whoami")
def thread_whoami() -> dict[str, Any]:
    return {
        "app": current_app.name,
        "task": current_task().id,
        "thread": threading.current_thread().name,
    }


@tasks.task(name="process_whoami", executor="process")
def process_whoami() -> dict[str, Any]:
    current_task().progress(1, 1, "in a process")
    return {"app": current_app.name, "task": current_task().id, "pid": os.getpid()}


@tasks.task(name="process_sleep", executor="process", timeout=0.5, max_attempts=1)
def process_sleep(seconds: float) -> int:
    with open(os.environ["SAMPLE_PID_FILE"], "w") as f:
        f.write(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


@tasks.task(name="process_die", executor="process", max_attempts=2, retry_backoff=0.01)
def process_die() -> None:
    os._exit(3)


@tasks.task(name="flaky", max_attempts=3, retry_backoff=0.01)
async def flaky(fail_times: int) -> int:
    attempt = current_task().attempt
    calls.append(("flaky", attempt))
    if attempt <= fail_times:
        raise ValueError(f"failure number {attempt}")
    return attempt


@tasks.task(name="switch", max_attempts=1)
async def switch() -> str:
    if not switch_on.is_set():
        raise RuntimeError("switched off")
    return "on"


@tasks.task(name="slow", timeout=0.2, max_attempts=1)
async def slow() -> None:
    await asyncio.sleep(30)


@tasks.task(name="thread_slow", timeout=0.2, max_attempts=1)
def thread_slow() -> None:
    while not current_task().cancelled:
        time.sleep(0.01)


@tasks.task(name="sleep")
async def sleep(seconds: float) -> float:
    calls.append(("sleep-start", current_task().id))
    await asyncio.sleep(seconds)
    calls.append(("sleep-end", current_task().id))
    return seconds


@tasks.task(name="wait_gate")
def wait_gate() -> str:
    calls.append(("wait_gate", current_task().id))
    gate.wait(10)
    return "through"


@tasks.task(name="chatty")
async def chatty(reports: int) -> int:
    for n in range(reports):
        current_task().progress(n + 1, reports)
    return reports


@tasks.task(name="unserialisable")
async def unserialisable() -> object:
    return object()


@tasks.task(name="surrogate_result", max_attempts=3, retry_backoff=0.01)
async def surrogate_result() -> str:
    calls.append(("surrogate_result", current_task().attempt))
    return "bad \ud800 text"


@tasks.task(name="process_surrogate_result", executor="process", max_attempts=3, retry_backoff=0.01)
def process_surrogate_result() -> str:
    return "bad \ud800 text"


@tasks.task(name="stubborn", max_attempts=1)
def stubborn() -> int:
    """A blocking body that ignores cancellation until :data:`release` is set."""
    calls.append(("stubborn-start", current_task().id))
    release.wait(30)
    calls.append(("stubborn-end", current_task().id))
    return current_task().attempt


@tasks.task(name="stubborn_timeout", timeout=0.2, max_attempts=1)
def stubborn_timeout() -> None:
    release.wait(30)


@tasks.task(name="thread_quick", timeout=0.5, max_attempts=1)
def thread_quick() -> str:
    return "quick"


@tasks.task(name="hidden", http=False)
async def hidden() -> None:
    return None


def create_app(database_url: str = "sqlite:///:memory:", **settings: Any) -> Quart:
    """A fresh app bound to the module's ``tasks``."""
    app = Quart("sample")
    app.config.update(
        TASKS_DATABASE_URL=database_url,
        TASKS_APP_IMPORT="tests.engine.sample_app:create_app",
        TASKS_PROCESSES=1,
        **{f"TASKS_{k.upper()}": v for k, v in settings.items()},
    )
    tasks.init_app(app)
    return app
