"""The dashboard's task list: filters, search by id, paging both ways, live rows.

The other pages (one task, queues, workers) and the page-level event stream
are in :mod:`tasks.web.dashboard_pages`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Blueprint, Response, make_response, redirect, render_template, request, url_for
from quart_schema import hide

from tasks.model import State, new_id
from tasks.summary import ELLIPSIS, Excerpt, TaskSummary
from tasks.web import auth
from tasks.web.dashboard_pages import add_pages, page_context
from tasks.web.payload import describe
from tasks.web.schemas import TASK_ID_PATTERN, QueueName, StateName
from tasks.web.workflow_pages import add_workflow_pages

if TYPE_CHECKING:
    from tasks.store import Store
    from tasks.web.extension import TasksWeb

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self';"
    " object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""The dashboard runs only its own script files: even if task text ever reached the page
as markup, no inline script or event handler in it would run."""
PAGE_ROWS = 50
"""Tasks per page of the list."""

TaskId = Annotated[str, Field(pattern=TASK_ID_PATTERN)]
ID_LENGTH = 32
MIN_PREFIX = 8
"""Fewest leading hex digits of an id that the search box looks up."""
_HEX = re.compile("[0-9a-f]+")


class DashboardQuery(BaseModel):
    """Query string of the task list page."""

    model_config = ConfigDict(extra="ignore")

    state: StateName | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    queue: QueueName | None = None
    cursor: TaskId | None = None
    """Older page: tasks before this id."""
    after: TaskId | None = None
    """Newer page: tasks after this id."""
    id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    """Search: open the task with this id."""


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


async def find_task(store: Store, text: str) -> str | None:
    """The id of the task whose id is ``text``, or else of the oldest whose id starts with it
    (at least 8 hex digits; the list shows 12); None if there is none."""
    wanted = text.strip().lower()
    if not _HEX.fullmatch(wanted) or len(wanted) < MIN_PREFIX:
        return None
    if len(wanted) == ID_LENGTH:
        return wanted if await store.get_summary(wanted) is not None else None
    # Ids are fixed-width hex: the first id after prefix + zeros is the first with the prefix.
    page = await store.list_summaries(after=wanted.ljust(ID_LENGTH, "0"), limit=1)
    first = page.tasks[0].id if page.tasks else None
    return first if first is not None and first.startswith(wanted) else None


def add_dashboard(bp: Blueprint, web: TasksWeb) -> None:
    """Add ``GET /dashboard`` and the other dashboard pages to the task blueprint.

    Task text (names, errors, results, progress messages) reaches the pages only
    through Jinja's autoescaping and, in the scripts, ``textContent``.
    """
    tasks = web.tasks

    @bp.after_request
    async def harden(response: Response) -> Response:
        # JSON answers are never sniffed into HTML; the pages keep to their own files.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if (request.endpoint or "").startswith("tasks.dashboard"):
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            response.headers["Referrer-Policy"] = "same-origin"
        return response

    @bp.get("/dashboard")
    @hide
    async def dashboard() -> Any:
        """Server-rendered table of tasks; ``dashboard.js`` keeps it live over one stream."""
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
        given = {k: v for k, v in request.args.items() if v and k in DashboardQuery.model_fields}
        try:
            query = DashboardQuery.model_validate(given)
        except ValidationError as exc:
            error = describe(exc)
            query = DashboardQuery()
        if query.id is not None:
            found = await find_task(tasks.store, query.id)
            if found is not None:
                return redirect(url_for("tasks.dashboard_task", task_id=found))
            error = f"no task with id {query.id!r}"
        state = State(query.state) if query.state else None
        page = await tasks.store.list_summaries(
            state=state,
            name=query.name,
            queue=query.queue,
            limit=PAGE_ROWS,
            cursor=query.cursor,
            after=query.after if query.cursor is None else None,
        )
        filters = {"state": query.state, "name": query.name, "queue": query.queue}
        older = page.tasks[-1].id if page.tasks else None
        if query.after is not None and query.cursor is None:
            # A page newer than ``after``: older ones exist; newer ones if it says so.
            newer = page.tasks[0].id if page.next_cursor and page.tasks else None
            top = newer is None
        else:
            newer = page.tasks[0].id if query.cursor is not None and page.tasks else None
            top = query.cursor is None
            older = page.next_cursor
        # On the top page new tasks appear live: those newer than what it shows
        # (or, when it shows nothing, than this moment).
        live_after = (page.tasks[0].id if page.tasks else new_id()[:12] + "0" * 20) if top else ""
        names = sorted(name for name, task in tasks.registry.items() if task.http)
        queues = sorted({s.queue for s in await tasks.store.queue_stats()})
        return await render_template(
            "tasks_dashboard.html",
            **await page_context(tasks, "list"),
            tasks=page.tasks,
            filters=filters,
            query_state=query.state or "",
            query_name=query.name or "",
            query_queue=query.queue or "",
            older=older,
            newer=newer,
            live_after=live_after,
            states=[state.value for state in State],
            names=names,
            queues=queues,
            percent=percent,
            excerpt=excerpt_text,
            error=error,
        )

    add_pages(bp, web)
    add_workflow_pages(bp, web)
