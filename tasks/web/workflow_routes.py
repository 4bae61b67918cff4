"""Workflows over HTTP: ``GET /tasks/workflows/<id>`` and ``POST .../<id>/cancel``, and
the ``workflow`` member of ``GET /tasks/<id>`` (:func:`task_workflow`) and what the task
page shows of a step's neighbours (:func:`step_links`).

Under ``workflows/``: a path ``/tasks/<word>`` would also match the task route.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quart import Blueprint, Response, jsonify
from quart_schema import document_response

from tasks.errors import WorkflowNotFoundError
from tasks.web.openapi import openapi_extra
from tasks.web.schemas import TASK_ID_PATTERN
from tasks.web.workflow_schemas import WorkflowCancelOut, WorkflowOut
from tasks.web.workflow_views import task_workflow_view, workflow_view

if TYPE_CHECKING:
    from tasks.extension import Tasks
    from tasks.model import TaskRecord

Decorator = Callable[..., Callable[[Any], Any]]
_ID = re.compile(TASK_ID_PATTERN)
_PATH = {"workflow_id": TASK_ID_PATTERN}


def known_workflow_id(workflow_id: str) -> str:
    """``workflow_id`` if it looks like an id; else :class:`WorkflowNotFoundError` (404)."""
    if not _ID.match(workflow_id):
        raise WorkflowNotFoundError(f"no workflow with id {workflow_id[:64]!r}")
    return workflow_id


async def task_workflow(tasks: Tasks, record: TaskRecord) -> dict[str, Any] | None:
    """A ``TaskWorkflowOut`` for a step (its workflow and neighbours); None for a plain task."""
    if record.workflow_id is None:
        return None
    edges = await tasks.store.task_edges(record.id)
    view: dict[str, Any] = task_workflow_view(record.workflow_id, record.id, edges)
    return view


@dataclass(frozen=True, slots=True)
class StepLink:
    """A neighbour of a step on its task page."""

    id: str
    name: str
    state: str
    kind: str


async def step_links(tasks: Tasks, record: TaskRecord) -> dict[str, list[StepLink]] | None:
    """For a step's task page: ``{"parents": [...], "children": [...]}``; None for a plain
    task. Composed from ``task_edges`` and the neighbours' summaries."""
    if record.workflow_id is None:
        return None
    edges = await tasks.store.task_edges(record.id)
    ends = [(e.parent_id, e.kind, "parents") for e in edges if e.child_id == record.id]
    ends += [(e.child_id, e.kind, "children") for e in edges if e.parent_id == record.id]
    found = {s.id: s for s in await tasks.store.get_summaries([i for i, _, _ in ends][:500])}
    links: dict[str, list[StepLink]] = {"parents": [], "children": []}
    for task_id, kind, side in ends:
        summary = found.get(task_id)
        if summary is not None:
            links[side].append(StepLink(task_id, summary.name, summary.state.value, kind))
    return links


def add_workflow_routes(bp: Blueprint, tasks: Tasks, errors: Decorator) -> None:
    """Mount the workflow routes on the task API blueprint; ``errors`` documents error bodies."""

    @bp.get("/workflows/<workflow_id>")
    @document_response(WorkflowOut, 200)
    @errors(404)
    @openapi_extra(path_patterns=_PATH)
    async def get_workflow(workflow_id: str) -> Response:
        """A workflow: its state (derived from its steps), counts by state, every step in
        build order with its parents, and the edges between them."""
        workflow = await tasks.get_workflow(known_workflow_id(workflow_id))
        return jsonify(workflow_view(workflow))

    @bp.post("/workflows/<workflow_id>/cancel")
    @document_response(WorkflowCancelOut, 202)
    @errors(404)
    @openapi_extra(path_patterns=_PATH)
    async def cancel_workflow(workflow_id: str) -> Response:
        """Cancel every unfinished step (running ones are asked to stop); 202 with how many
        and the workflow. A finished workflow answers 202 with ``cancelled`` 0."""
        count = await tasks.cancel_workflow(known_workflow_id(workflow_id))
        workflow = await tasks.get_workflow(workflow_id)
        response = jsonify({"cancelled": count, "workflow": workflow_view(workflow)})
        response.status_code = 202
        return response
