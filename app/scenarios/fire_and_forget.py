"""Scenario 2 (seed 002): start a blocking function, answer at once, run a callback after it.

The Flask version made a new ``ThreadPoolExecutor`` per request (one more
thread per request, never bounded) and found that its done-callback never
ran. Here the blocking function is a plain ``def`` task: it runs in the app's
one thread pool (``TASKS_THREADS`` threads, however many requests arrive),
and a task-event listener is the completion callback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from quart import Blueprint, Response, jsonify

from app.access import requires_token
from app.extensions import tasks
from app.scenarios.responses import accepted, install_error_handlers, json_object, number_field
from tasks import TaskEvent, current_task

log = logging.getLogger("app.fire")

blueprint = Blueprint("fire", __name__, url_prefix="/fire")
install_error_handlers(blueprint)

TASK_NAME = "fire.blocking_work"
OUTCOMES: deque[dict[str, Any]] = deque(maxlen=1000)
"""The callback's notes, newest last (this process only; a database would share them)."""


@tasks.task(name=TASK_NAME)
def blocking_work(seconds: float) -> float:
    """Block a pool thread for ``seconds`` (a stand-in for blocking I/O); stops if cancelled."""
    deadline = time.monotonic() + seconds
    while not current_task().cancelled and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(0.05, left))
    return seconds


def on_task_event(event: TaskEvent) -> None:
    """The completion callback: note how each ``fire.blocking_work`` run ended."""
    if event.name != TASK_NAME or event.kind not in ("succeeded", "failed", "cancelled"):
        return
    OUTCOMES.append(
        {
            "task_id": event.task_id,
            "outcome": event.kind,
            "run_time": event.run_time,
            "at": time.time(),
        }
    )
    log.info("callback: task %s %s", event.task_id, event.kind)


tasks.add_listener(on_task_event)


@blueprint.post("")
async def fire() -> tuple[Response, int, dict[str, str]]:
    """Start ``fire.blocking_work`` for ``seconds`` (default 1) and answer at once."""
    seconds = number_field(await json_object(), "seconds", 1.0, 0.0, 60.0)
    return accepted(await blocking_work.enqueue(seconds))


@blueprint.get("/callbacks")
@requires_token
async def callbacks() -> Response:
    """What the completion callback recorded, newest first."""
    return jsonify({"callbacks": list(reversed(OUTCOMES))})


@blueprint.get("/threads")
@requires_token
async def threads() -> Response:
    """Live thread counts: the whole process and the task thread pool (with its bound)."""
    pool = tasks.runtime.executors.threads
    return jsonify(
        {
            "active_threads": threading.active_count(),
            "pool_threads": pool.thread_count,
            "pool_max_threads": pool.max_workers,
        }
    )
