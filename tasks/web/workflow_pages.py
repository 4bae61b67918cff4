"""The dashboard's workflow page and its live stream.

``/tasks/dashboard/workflow/<id>`` lists the steps in build order: state,
progress, attempts, which steps each needs (numbered as on the page), a link to
each step's task page, and a Cancel button for the whole workflow.
``workflow.js`` keeps it live over one stream (:mod:`tasks.web.workflow_live`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from quart import Blueprint, Response, render_template, request
from quart_schema import hide

from tasks.errors import WorkflowNotFoundError
from tasks.web.dashboard_pages import page_context
from tasks.web.shutdown import SCOPE_KEY, Terminated
from tasks.web.sse import event_stream_response
from tasks.web.workflow_live import workflow_events
from tasks.web.workflow_routes import known_workflow_id
from tasks.web.workflow_views import workflow_view

if TYPE_CHECKING:
    from tasks.web.extension import TasksWeb

MAX_SHOWN_PARENTS = 8
"""Parents a step's row names; beyond that it says how many more."""


def step_percent(step: dict[str, Any]) -> float:
    """How far along a step (a ``StepOut`` view) is, 0 to 100."""
    if step["state"] == "succeeded":
        return 100.0
    total = float(step["progress"]["total"] or 0)
    if total <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * float(step["progress"]["current"]) / total))


def parent_refs(view: dict[str, Any]) -> dict[str, list[tuple[int, str]]]:
    """Step id -> its parents as (number on the page, edge kind), in input order."""
    numbers = {step["id"]: n for n, step in enumerate(view["steps"], 1)}
    kinds = {(e["parent"], e["child"]): e["kind"] for e in view["edges"]}
    refs: dict[str, list[tuple[int, str]]] = {}
    for step in view["steps"]:
        own = [p for p in step["parents"] if p in numbers]
        refs[step["id"]] = [(numbers[p], kinds.get((p, step["id"]), "needs")) for p in own]
    return refs


def add_workflow_pages(bp: Blueprint, web: TasksWeb) -> None:
    """Add the workflow page and its event stream to the task blueprint."""
    tasks = web.tasks

    @bp.get("/dashboard/workflow/<workflow_id>")
    @hide
    async def dashboard_workflow(workflow_id: str) -> Any:
        """Every step of one workflow; ``workflow.js`` follows them live."""
        try:
            workflow = await tasks.get_workflow(known_workflow_id(workflow_id))
        except WorkflowNotFoundError:
            context = await page_context(tasks, "workflow")
            body = await render_template(
                "tasks_missing.html", **context, task_id=workflow_id, what="workflow"
            )
            return Response(body, 404, content_type="text/html")
        view = workflow_view(workflow)
        return await render_template(
            "tasks_workflow.html",
            **await page_context(tasks, "workflow"),
            workflow=view,
            refs=parent_refs(view),
            percent=step_percent,
            max_parents=MAX_SHOWN_PARENTS,
        )

    @bp.get("/dashboard/workflow/<workflow_id>/events")
    @hide
    async def dashboard_workflow_events(workflow_id: str) -> Response:
        """The workflow page's one live stream (see :mod:`tasks.web.workflow_live`)."""
        workflow = await tasks.get_workflow(known_workflow_id(workflow_id))
        stream = workflow_events(
            tasks,
            workflow,
            terminated=cast("Terminated | None", request.scope.get(SCOPE_KEY)),
            poll_interval=max(web.poll_interval, 0.5),
            keepalive=web.keepalive,
        )
        return event_stream_response(stream)
