"""Workflows as the HTTP API and the dashboard show them: JSON-ready views and the
workflow's own state, derived from its steps.

A workflow has no stored state of its own; :func:`workflow_state` derives one:

- ``running`` while any step is unfinished (queued, waiting, running, cancelling);
- else ``succeeded`` if every result step succeeded;
- else ``failed`` if any step failed;
- else ``cancelled`` (steps were cancelled, none failed).

An error step that was not needed is deleted by the store when the workflow
ends well: it is then no longer a step, and the views simply leave it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tasks.model import TERMINAL_STATES, State, TaskRecord, iso
from tasks.store.graphs import Edge, WorkflowRecord
from tasks.summary import TaskSummary, clip

WORKFLOW_RUNNING = "running"


def workflow_state(states: Mapping[str, State], result_ids: Iterable[str]) -> str:
    """The workflow's state from its steps' (``states``: step id -> state); see the module."""
    if any(state not in TERMINAL_STATES for state in states.values()):
        return WORKFLOW_RUNNING
    if all(states.get(task_id) is State.SUCCEEDED for task_id in result_ids):
        return State.SUCCEEDED.value
    if any(state is State.FAILED for state in states.values()):
        return State.FAILED.value
    return State.CANCELLED.value


def state_counts(states: Iterable[State]) -> dict[str, int]:
    """Steps per state, every state present (zero included)."""
    counts = dict.fromkeys((state.value for state in State), 0)
    for state in states:
        counts[state.value] += 1
    return counts


def parents_of(edges: Iterable[Edge]) -> dict[str, list[str]]:
    """Step id -> the ids of its parents, in input order (edges come ordered by position)."""
    parents: dict[str, list[str]] = {}
    for edge in sorted(edges, key=lambda e: (e.child_id, e.position)):
        parents.setdefault(edge.child_id, []).append(edge.parent_id)
    return parents


def step_view(step: TaskRecord | TaskSummary, parents: list[str]) -> dict[str, Any]:
    """A ``StepOut``: what the workflow shows of one step (free texts clipped)."""
    error = None if step.error is None else {"type": step.error.type, "message": step.error.message}
    return {
        "id": step.id,
        "name": step.name,
        "state": step.state.value,
        "progress": {
            "current": step.progress.current,
            "total": step.progress.total,
            "message": clip(step.progress.message),
        },
        "attempts": step.attempts,
        "max_attempts": step.max_attempts,
        "error": None if error is None else {key: clip(text) for key, text in error.items()},
        "created_at": iso(step.created_at),
        "started_at": iso(step.started_at),
        "finished_at": iso(step.finished_at),
        "version": step.version,
        "parents": parents,
    }


def status_view(
    workflow_id: str, states: Mapping[str, State], result_ids: list[str]
) -> dict[str, Any]:
    """The changing part of a workflow: ``{"id", "state", "done", "counts"}``."""
    state = workflow_state(states, result_ids)
    return {
        "id": workflow_id,
        "state": state,
        "done": state != WORKFLOW_RUNNING,
        "counts": state_counts(states.values()),
    }


def workflow_view(workflow: WorkflowRecord) -> dict[str, Any]:
    """A ``WorkflowOut``: the workflow, its derived state, counts, steps and edges."""
    steps = sorted(workflow.steps, key=lambda s: s.id)
    parents = parents_of(workflow.edges)
    states = {step.id: step.state for step in steps}
    return {
        **status_view(workflow.id, states, workflow.result_ids),
        "kind": workflow.kind,
        "created_at": iso(workflow.created_at),
        "result_ids": workflow.result_ids,
        "result_kind": workflow.result_kind,
        "steps": [step_view(step, parents.get(step.id, [])) for step in steps],
        "edges": [edge.to_dict() for edge in workflow.edges],
    }


def task_workflow_view(workflow_id: str | None, task_id: str, edges: list[Edge]) -> Any:
    """The ``workflow`` member of ``GET /tasks/<id>``: None for a plain task."""
    if workflow_id is None:
        return None
    return {
        "id": workflow_id,
        "parents": [
            {"id": e.parent_id, "kind": e.kind, "position": e.position}
            for e in edges
            if e.child_id == task_id
        ],
        "children": [
            {"id": e.child_id, "kind": e.kind, "position": e.position}
            for e in edges
            if e.parent_id == task_id
        ],
    }
