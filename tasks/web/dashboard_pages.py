"""Dashboard pages beside the task list: one task, queues, workers; and the page-level
event stream that keeps the list live (:mod:`tasks.web.live`)."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any, cast

from quart import Blueprint, Response, render_template, request, url_for
from quart_schema import hide

from tasks.errors import TaskNotFoundError
from tasks.model import State, TaskRecord, iso
from tasks.web.errors import ApiError
from tasks.web.live import MAX_WATCHED, Listing, dashboard_events
from tasks.web.schemas import TASK_ID_PATTERN
from tasks.web.shutdown import SCOPE_KEY, Terminated
from tasks.web.sse import event_stream_response
from tasks.web.workflow_routes import step_links

if TYPE_CHECKING:
    from tasks.extension import Tasks
    from tasks.web.extension import TasksWeb

_TASK_ID = re.compile(TASK_ID_PATTERN)
SCHEDULE_KEY_PREFIX = "schedule:"
"""Idempotency keys of tasks a schedule fired start with this (``tasks.schedules``)."""


async def page_context(tasks: Tasks, page: str) -> dict[str, Any]:
    """What the shared layout shows: which page, counts by state."""
    counts = await tasks.store.count_by_state()
    return {"page": page, "counts": {state.value: n for state, n in counts.items()}}


def pretty(value: Any) -> str:
    """A stored JSON value as indented text (escaped by the template)."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def span(seconds: float | None) -> str:
    """A duration for people: ``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds is None:
        return ""
    if seconds < 0:
        return "-" + span(-seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def between(start: float | None, end: float | None) -> float | None:
    """``end - start`` when both are known."""
    return None if start is None or end is None else end - start


def schedule_of(record: TaskRecord) -> str | None:
    """The name of the schedule that fired this task, if one did."""
    key = record.idempotency_key or ""
    if not key.startswith(SCHEDULE_KEY_PREFIX):
        return None
    return key[len(SCHEDULE_KEY_PREFIX) :].rpartition(":")[0] or None


def timings(record: TaskRecord, now: float) -> list[tuple[str, str | None, str]]:
    """(label, ISO time, note) rows of the detail page."""
    delayed = record.state is State.QUEUED and record.run_at > now
    return [
        ("Created", iso(record.created_at), ""),
        (
            "Due (run_at)",
            iso(record.run_at),
            f"delayed: due in {span(record.run_at - now)}" if delayed else "",
        ),
        (
            "Started",
            iso(record.started_at),
            f"waited {span(between(record.run_at, record.started_at))} after due"
            if record.started_at
            else "",
        ),
        (
            "Finished",
            iso(record.finished_at),
            f"ran {span(between(record.started_at, record.finished_at))},"
            f" {span(between(record.created_at, record.finished_at))} since created"
            if record.finished_at and record.started_at
            else "",
        ),
    ]


def add_pages(bp: Blueprint, web: TasksWeb) -> None:
    """Add the task, queues and workers pages and the dashboard's event stream."""
    tasks = web.tasks

    @bp.get("/dashboard/task/<task_id>")
    @hide
    async def dashboard_task(task_id: str) -> Any:
        """Everything about one task; ``task.js`` follows its changes."""
        try:
            record = await tasks.get(task_id)
        except TaskNotFoundError:
            context = await page_context(tasks, "task")
            body = await render_template("tasks_missing.html", **context, task_id=task_id)
            return Response(body, 404, content_type="text/html")
        now = time.time()
        progress = record.progress
        percent = 100.0 if record.state is State.SUCCEEDED else 0.0
        if record.state is not State.SUCCEEDED and progress.total and progress.total > 0:
            percent = max(0.0, min(100.0, 100.0 * progress.current / progress.total))
        return await render_template(
            "tasks_task.html",
            **await page_context(tasks, "task"),
            task=record,
            percent=percent,
            timings=timings(record, now),
            schedule=schedule_of(record),
            pretty=pretty,
            iso=iso,
            has_result=record.state is State.SUCCEEDED or record.result is not None,
            waiting=await tasks.why_waiting(record),
            links=await step_links(tasks, record),
        )

    @bp.get("/dashboard/queues")
    @hide
    async def dashboard_queues() -> Any:
        """Queues (live from ``GET /tasks/queues``), the activity chart and schedules."""
        now = time.time()
        schedules = [view.to_dict(now) for view in await tasks.schedule_views()]
        return await render_template(
            "tasks_queues.html", **await page_context(tasks, "queues"), schedules=schedules
        )

    @bp.get("/dashboard/workers")
    @hide
    async def dashboard_workers() -> Any:
        """Worker processes, read by ``workers.js`` from ``GET /tasks/workers``."""
        return await render_template("tasks_workers.html", **await page_context(tasks, "workers"))

    @bp.get("/dashboard/events")
    @hide
    async def dashboard_event_stream() -> Response:
        """The list page's one live stream (see :mod:`tasks.web.live`).

        Query: ``ids`` (comma-separated, the tasks shown), and on the top page
        ``after`` (the newest id shown) with the filters ``state``, ``name``, ``queue``.
        """
        args = request.args
        ids = [i for i in args.get("ids", "").split(",") if i]
        if len(ids) > MAX_WATCHED:
            raise ApiError(400, "invalid_query", f"ids: at most {MAX_WATCHED} task ids")
        after = args.get("after") or None
        for value in (*ids, *([after] if after else [])):
            if not _TASK_ID.match(value):
                raise ApiError(400, "invalid_query", f"not a task id: {value[:64]!r}")
        state = args.get("state") or None
        if state is not None and state not in State.__members__.values():
            raise ApiError(400, "invalid_query", f"state: unknown state {state[:32]!r}")
        listing = Listing(
            after=after,
            state=State(state) if state else None,
            name=args.get("name") or None,
            queue=args.get("queue") or None,
        )
        template = url_for("tasks.get_task", task_id="f" * 32)
        stream = dashboard_events(
            tasks,
            ids,
            listing,
            location=lambda task_id: template.replace("f" * 32, task_id),
            terminated=cast("Terminated | None", request.scope.get(SCOPE_KEY)),
            poll_interval=max(web.poll_interval, 0.5),
            keepalive=web.keepalive,
        )
        return event_stream_response(stream)
