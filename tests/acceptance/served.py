"""The app the acceptance tests serve: the reference app plus an execution log and a poison task.

Served with ``hypercorn tests.acceptance.served:app``. Every task start in
every worker process appends ``started <task id> <pid>`` to the file named by
``ACCEPT_EXECUTION_LOG`` (one ``O_APPEND`` write per line, so lines from
several processes never interleave), which lets a test count how many times
each task body began, across kills and restarts.

With ``ACCEPT_TICK_EVERY=<seconds>``, the task ``accept.tick`` runs on an
interval schedule (missed slots: ``all``), for the schedule tests.
"""

from __future__ import annotations

import os
import time

from app import create_app
from app.extensions import tasks
from tasks import TaskEvent

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


if os.environ.get("ACCEPT_TICK_EVERY"):
    tasks.schedule(tick, every=float(os.environ["ACCEPT_TICK_EVERY"]), missed="all")


def _record(event: TaskEvent) -> None:
    if _LOG and event.kind in ("started", "succeeded"):
        line = f"{event.kind} {event.task_id} {os.getpid()}\n".encode()
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


tasks.add_listener(_record)
app = create_app({"TASKS_APP_IMPORT": "tests.acceptance.served:app"})
