"""Pydantic models of the workflow routes (they generate the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from tasks.web.schemas import ProgressOut, StateName, SummaryErrorOut, TaskOut

WorkflowStateName = Literal["running", "succeeded", "failed", "cancelled"]
EdgeKindName = Literal["needs", "error"]


class LinkOut(BaseModel):
    """One edge seen from a step: the step at its other end."""

    id: str
    kind: EdgeKindName
    """``needs``: the child runs once the parent succeeded; ``error``: the child runs if
    the parent fails."""
    position: int
    """Orders a step's inputs (a step receiving several results gets them in this order)."""


class TaskWorkflowOut(BaseModel):
    """The workflow a task is a step of, and its neighbours in it."""

    id: str
    parents: list[LinkOut]
    """Steps this one needs (or whose failure starts it)."""
    children: list[LinkOut]
    """Steps that need this one (or start if it fails)."""


class TaskDetailOut(TaskOut):
    """A task as ``GET /tasks/<id>`` answers: the stored task, why it waits (if queued),
    and its place in a workflow."""

    workflow: TaskWorkflowOut | None
    """The workflow it is a step of, with its parents and children; null: a plain task."""


class StepOut(BaseModel):
    """One step as the workflow shows it (texts cut to 200 characters, as in summaries)."""

    id: str
    name: str
    state: StateName
    progress: ProgressOut
    attempts: int
    max_attempts: int
    error: SummaryErrorOut | None
    """Why it did not succeed: a step cancelled because an earlier one failed has
    ``DependencyError``, its message naming that step."""
    created_at: str
    started_at: str | None
    finished_at: str | None
    version: int
    parents: list[str]
    """Ids of the steps it needs or watches, in input order."""


class EdgeOut(BaseModel):
    """``child`` needs ``parent`` (``needs``) or runs if it fails (``error``)."""

    parent: str
    child: str
    kind: EdgeKindName
    position: int


class StepCounts(BaseModel):
    """How many steps are in each state."""

    queued: int
    waiting: int
    running: int
    cancelling: int
    succeeded: int
    failed: int
    cancelled: int


class WorkflowOut(BaseModel):
    """A workflow and every step as it is now. Timestamps are ISO 8601 UTC strings."""

    id: str
    kind: str
    """``chain``, ``group``, ``chord`` or ``depends`` (one task's ``depends_on``)."""
    created_at: str
    state: WorkflowStateName
    """``running`` while any step is unfinished; then ``succeeded`` if every result step
    succeeded, ``failed`` if any step failed, else ``cancelled``."""
    done: bool
    result_ids: list[str]
    """The steps whose results are the workflow's."""
    result_kind: Literal["one", "list"]
    counts: StepCounts
    steps: list[StepOut]
    """In the order they were built (ids sort by creation)."""
    edges: list[EdgeOut]


class WorkflowCancelOut(BaseModel):
    """How many steps a cancel stopped, and the workflow after it."""

    cancelled: int
    """Steps that were unfinished (running ones are asked to stop)."""
    workflow: WorkflowOut
