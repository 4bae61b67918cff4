"""The dashboard page: recent tasks with live progress bars, filters, cancel and retry."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from quart import Blueprint, Response, make_response, redirect, render_template, request, url_for
from quart_schema import hide

from tasks.model import State
from tasks.summary import ELLIPSIS, Excerpt, TaskSummary
from tasks.web import auth
from tasks.web.payload import describe
from tasks.web.schemas import ListQuery

if TYPE_CHECKING:
    from tasks.web.extension import TasksWeb

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"
    " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The dashboard runs only its own script file: even if task text ever reached the page
as markup, no inline script or event handler in it would run."""


def percent(record: TaskSummary) -> float:
    """How far along a task is, 0 to 100, for its progress bar."""
    if record.state == State.SUCCEEDED:
        return 100.0
    total = record.progress.total
    if not total or total <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * record.progress.current / total))


def excerpt_text(excerpt: Excerpt | None) -> str:
    """An excerpt as shown in the table (``dashboard.js`` formats it the same way)."""
    if excerpt is None:
        return ""
    if not excerpt.truncated:
        return excerpt.preview
    return f"{excerpt.preview}{ELLIPSIS} ({excerpt.size} bytes)"


def add_dashboard(bp: Blueprint, web: TasksWeb) -> None:
    """Add ``GET /dashboard`` to the task blueprint.

    Task text (names, errors, progress messages) reaches the page only through
    Jinja's autoescaping and, in ``dashboard.js``, ``textContent``.
    """
    tasks = web.tasks

    @bp.after_request
    async def harden(response: Response) -> Response:
        # JSON answers are never sniffed into HTML; the page keeps to its own files.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.endpoint == "tasks.dashboard":
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            response.headers["Referrer-Policy"] = "same-origin"
        return response

    @bp.get("/dashboard")
    @hide
    async def dashboard() -> Any:
        """Server-rendered table of recent tasks; scripts keep it live."""
        token = request.args.get("token")
        if token is not None and tasks.config.api_token:
            # Opened once with ?token=: keep it in a cookie, drop it from the URL.
            args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "token"}
            response = await make_response(redirect(url_for("tasks.dashboard", **args)))
            response.set_cookie(
                auth.COOKIE_NAME,
                token,
                httponly=True,
                samesite="Strict",
                secure=request.scheme == "https",
                path=url_for("tasks.list_tasks") or "/",
            )
            return response
        error = None
        filters = {k: v for k, v in request.args.items() if v and k in ("state", "name", "cursor")}
        try:
            query = ListQuery.model_validate(filters)
        except ValidationError as exc:
            error = describe(exc)
            query = ListQuery()
        page = await tasks.list_summaries(
            state=State(query.state) if query.state else None,
            name=query.name,
            limit=50,
            cursor=query.cursor,
        )
        counts = await tasks.store.count_by_state()
        now = time.time()
        schedules = [view.to_dict(now) for view in await tasks.schedule_views()]
        names = sorted(name for name, task in tasks.registry.items() if task.http)
        return await render_template(
            "tasks_dashboard.html",
            tasks=page.tasks,
            next_cursor=page.next_cursor,
            state=query.state or "",
            name=query.name or "",
            states=[state.value for state in State],
            names=names,
            counts={state.value: n for state, n in counts.items()},
            schedules=schedules,
            percent=percent,
            excerpt=excerpt_text,
            error=error,
        )
