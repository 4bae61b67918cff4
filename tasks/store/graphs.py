"""What the store keeps of a workflow: its steps' edges and its own row.

A workflow is written in one transaction (:meth:`WorkflowStore.insert_workflow`)
and moved on by triggers in the database (``sql/<backend>/0008_workflows.sql``):
a step's success unblocks the steps that need it, its failure or cancel
cancels them and starts its error steps, its retry makes them wait again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tasks.model import NewTask, TaskRecord

EdgeKind = Literal["needs", "error"]
Receives = Literal["result", "results", "failure"]
ResultKind = Literal["one", "list"]

MAX_STEPS = 1000
"""The most steps one workflow call may write."""
MAX_DEPTH = 100
"""The most steps one after another in a workflow call (its longest chain). A failure
cancels, and a retry revives, the steps below it level by level; the cost grows with
the square of the depth on SQLite (nested triggers)."""


@dataclass(frozen=True, slots=True)
class Edge:
    """``child`` needs ``parent`` to succeed (``needs``), or runs if it fails (``error``).

    ``position`` orders a step's inputs: the results a step that receives
    ``results`` gets are in the order of its edges' positions.
    """

    parent_id: str
    child_id: str
    kind: EdgeKind = "needs"
    position: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "parent": self.parent_id,
            "child": self.child_id,
            "kind": self.kind,
            "position": self.position,
        }


@dataclass(slots=True)
class NewWorkflow:
    """A workflow about to be written: its steps (rows), their edges, and its result.

    ``receives`` maps a step's id to what its first argument will be. An
    edge's parent may be a task already stored (``depends_on``); such a task
    that belongs to no workflow joins this one.
    """

    id: str
    kind: str
    created_at: float
    steps: list[NewTask]
    edges: list[Edge]
    result_ids: list[str]
    result_kind: ResultKind = "one"
    receives: dict[str, Receives] = field(default_factory=dict)

    @property
    def outside_parents(self) -> list[str]:
        """Parents that are not steps of this call (tasks stored before), sorted."""
        own = {step.id for step in self.steps}
        return sorted({e.parent_id for e in self.edges if e.parent_id not in own})


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A stored workflow: its steps as they are now and the edges between them."""

    id: str
    kind: str
    created_at: float
    result_ids: list[str]
    result_kind: ResultKind
    steps: list[TaskRecord]
    edges: list[Edge]


@dataclass(frozen=True, slots=True)
class StepInput:
    """One input of a step: the parent, its state and its result (decoded JSON)."""

    parent_id: str
    kind: EdgeKind
    state: str
    result: Any


def workflow_from_rows(meta: Any, steps: list[TaskRecord], edges: list[Edge]) -> WorkflowRecord:
    """A :class:`WorkflowRecord` from its ``tasks_workflows`` row, steps and edges."""
    return WorkflowRecord(
        id=meta[0],
        kind=meta[1],
        created_at=float(meta[2]),
        result_ids=json.loads(meta[3]),
        result_kind=meta[4],
        steps=steps,
        edges=edges,
    )


def input_from_row(row: Any) -> StepInput:
    """A :class:`StepInput` from ``(parent_id, kind, state, result JSON)``."""
    return StepInput(row[0], row[1], row[2], None if row[3] is None else json.loads(row[3]))


def not_run_message(name: str, task_id: str, state: str) -> str:
    """Why a step that needs ``task_id`` was cancelled (the triggers word it the same)."""
    ended = "failed" if state == "failed" else "was cancelled"
    return f"not run: step {name} ({task_id}) {ended}"


class Workflows(Protocol):
    """The workflow methods of :class:`~tasks.store.base.Store` (both backends:
    :class:`~tasks.store.workflow_store.WorkflowStore`)."""

    async def insert_workflow(self, workflow: NewWorkflow) -> None:
        """Write a whole workflow in one transaction, or nothing."""

    async def cancel_workflow(self, workflow_id: str) -> list[str] | None:
        """Cancel every unfinished step (running ones are asked to stop); their ids,
        None if there is no such workflow."""

    async def workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """A workflow with every step as it is now, or None."""

    async def step_inputs(self, task_id: str) -> list[StepInput]:
        """What a step receives, in order."""

    async def task_edges(self, task_id: str) -> list[Edge]:
        """The workflow edges from and to a task."""
