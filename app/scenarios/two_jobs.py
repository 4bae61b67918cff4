"""Scenario 3 (seed 004): one request launches two jobs, one with arguments, and returns.

The Flask version submitted both functions to a module-level two-thread
executor: nothing recorded when they ran or how they ended. Here both are
stored in one transaction and run side by side in the app's thread pool;
their start and finish times and results are in the task API.
"""

from __future__ import annotations

import logging
import time

from quart import Blueprint, Response, current_app, jsonify

from app.extensions import tasks
from app.scenarios.responses import install_error_handlers
from tasks import current_task

log = logging.getLogger("app.jobs")

blueprint = Blueprint("jobs", __name__, url_prefix="/jobs")
install_error_handlers(blueprint)


def _work(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not current_task().cancelled and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(0.05, left))


@tasks.task(name="jobs.first")
def first_job() -> str:
    """A long job without arguments (``APP_JOB_SECONDS``)."""
    log.info("job #1 started")
    _work(current_app.config["APP_JOB_SECONDS"])
    log.info("job #1 done")
    return "job #1 done"


@tasks.task(name="jobs.second")
def second_job(word: str, number: int) -> str:
    """A job with arguments, half as long as the first."""
    log.info("job #2 started with %r and %r", word, number)
    _work(current_app.config["APP_JOB_SECONDS"] / 2)
    log.info("job #2 done")
    return f"job #2 done with {word} {number}"


@blueprint.post("")
async def launch() -> tuple[Response, int]:
    """Enqueue both jobs in one transaction; 202 with both task ids."""
    handles = await tasks.enqueue_many([first_job.call(), second_job.call("hello", 123)])
    jobs = [{"id": handle.id, "url": f"/tasks/{handle.id}"} for handle in handles]
    return jsonify({"jobs": jobs}), 202
