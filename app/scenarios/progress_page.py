"""Scenario 4 (seed 001): a long task with a live progress bar, several at once.

The Celery version needed Redis, a separate worker and a page polling a
status endpoint. Here the page starts ``demo.progress`` and follows each
task over the task API's Server-Sent Events (``/tasks/<id>/events``): the
bar moves as the task reports, and ends with the result.
"""

from __future__ import annotations

from quart import Blueprint, Response, render_template

from app.demo import MAX_STEP_DELAY, MAX_STEPS, progress
from app.scenarios.responses import (
    accepted,
    install_error_handlers,
    int_field,
    json_object,
    number_field,
)

blueprint = Blueprint("progress", __name__, url_prefix="/progress")
install_error_handlers(blueprint)


@blueprint.get("")
async def page() -> str:
    """The page: start buttons and one live bar per started task."""
    return await render_template("scenarios/progress.html")


@blueprint.post("")
async def start() -> tuple[Response, int, dict[str, str]]:
    """Start ``demo.progress`` with ``steps`` (default 10) of ``delay`` seconds (default 0.5)."""
    body = await json_object()
    steps = int_field(body, "steps", 10, 1, MAX_STEPS)
    delay = number_field(body, "delay", 0.5, 0, MAX_STEP_DELAY)
    return accepted(await progress.enqueue(steps, delay))
