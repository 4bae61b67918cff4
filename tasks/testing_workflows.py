"""Workflows in the test modes (:mod:`tasks.testing`): the store's moves, in memory.

A workflow enqueued in a test mode is built as the engine builds it and its
steps become test-mode records; the moves the store's triggers make
(``sql/<backend>/0008_workflows.sql``) are made here after each step ends:
a success queues the steps whose needs all succeeded, a failure or cancel
cancels the steps after it with a ``DependencyError`` and queues the error
steps, an error step nobody can need any more is dropped. In eager mode the
queued steps run at once, in order; in capture mode :meth:`Capture.run`
runs them.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from tasks.enqueueing import build_row, queued_record
from tasks.errors import InvalidArgumentsError, TaskNotFoundError, WorkflowNotFoundError
from tasks.model import ErrorInfo, NewTask, State, TaskRecord
from tasks.step_inputs import with_inputs
from tasks.store.graphs import Edge, NewWorkflow, StepInput, WorkflowRecord, not_run_message

if TYPE_CHECKING:
    from tasks.registry import TaskCall

ENDED = (State.FAILED, State.CANCELLED)


def test_row(call: TaskCall[Any], now: float) -> NewTask:
    """A step's row without a running engine (what ``enqueueing.new_task`` makes)."""
    return build_row(call, now, default_max_attempts=3)


class WorkflowRuns:
    """The workflow part of a test mode; mixed into :class:`~tasks.testing.TestMode`."""

    _records: dict[str, TaskRecord]
    _workflows: dict[str, NewWorkflow]
    _to: dict[str, list[Edge]]
    """A step's edges from the steps it needs or watches."""
    _from: dict[str, list[Edge]]
    """A step's edges to the steps that need or watch it."""

    def _add(self, record: TaskRecord) -> None:
        raise NotImplementedError

    def _drop(self, task_id: str) -> None:
        raise NotImplementedError

    async def _run_ready(self, workflow_id: str) -> None:
        """Run the queued steps (eager mode); capture mode leaves them for ``run()``."""

    async def enqueue_workflow(self, workflow: NewWorkflow) -> None:
        """Record every step of ``workflow`` (waiting or queued), then move it on."""
        for edge in workflow.edges:
            if edge.parent_id not in self._records and all(
                s.id != edge.parent_id for s in workflow.steps
            ):
                raise TaskNotFoundError(f"no task with id {edge.parent_id} to depend on")
        self._workflows[workflow.id] = workflow
        for edge in workflow.edges:
            self._to.setdefault(edge.child_id, []).append(edge)
            self._from.setdefault(edge.parent_id, []).append(edge)
        for row in workflow.steps:
            record = queued_record(row)
            record.workflow_id, record.receives = workflow.id, workflow.receives.get(row.id)
            self._add(record)
        for parent in workflow.outside_parents:
            self._records[parent].workflow_id = self._records[parent].workflow_id or workflow.id
        for record in [self._records[s.id] for s in workflow.steps]:
            self._settle(record)
        await self._run_ready(workflow.id)

    def get_workflow(self, workflow_id: str) -> WorkflowRecord:
        """The workflow with its steps as they are now."""
        workflow = self._workflows.get(workflow_id)
        if workflow is None:
            raise WorkflowNotFoundError(f"no workflow with id {workflow_id} in this test mode")
        steps = [self._records[s.id] for s in workflow.steps if s.id in self._records]
        edges = [e for e in workflow.edges if e.child_id in self._records]
        return WorkflowRecord(
            workflow.id, workflow.kind, workflow.created_at, workflow.result_ids,
            workflow.result_kind, steps, edges,
        )  # fmt: skip

    def knows_workflow(self, workflow_id: str) -> bool:
        """Whether ``workflow_id`` was enqueued in this mode."""
        return workflow_id in self._workflows

    def step_arguments(self, record: TaskRecord) -> list[Any]:
        """``record``'s arguments with what it receives first, as the engine gives them
        (:func:`tasks.step_inputs.with_inputs`), each result a fresh copy."""
        if record.receives is None:
            return record.args
        edges = sorted(self._to.get(record.id, ()), key=lambda e: e.position)
        inputs = [
            StepInput(
                e.parent_id, e.kind, parent.state.value, json.loads(json.dumps(parent.result))
            )
            for e in edges
            if (parent := self._records.get(e.parent_id)) is not None
        ]
        return with_inputs(record, inputs)

    def moved(self, record: TaskRecord) -> None:
        """What the store's triggers do after ``record`` reached its state."""
        for edge in [e for e in self._from.get(record.id, ()) if e.child_id in self._records]:
            child = self._records[edge.child_id]
            if child.state != State.WAITING:
                continue
            if edge.kind == "needs" and record.state == State.SUCCEEDED:
                self._settle(child)
            elif edge.kind == "needs" and record.state in ENDED:
                self._not_run(child, record)
            elif edge.kind == "error" and record.state == State.FAILED:
                child.state = State.QUEUED
            elif all(self._state(e.parent_id) in (State.SUCCEEDED, State.CANCELLED)
                     for e in self._to.get(child.id, ())):  # fmt: skip
                self._drop(child.id)  # an error step nobody can need any more

    def _settle(self, record: TaskRecord) -> None:
        """A step waits while a need has not succeeded; queued when none is left."""
        edges = self._to.get(record.id, [])
        needs = [e.parent_id for e in edges if e.kind == "needs"]
        ended = [p for p in needs if self._state(p) in ENDED]
        if ended:
            record.state = State.WAITING
            self._not_run(record, self._records[ended[0]])
            return
        record.blockers = sum(1 for p in needs if self._state(p) != State.SUCCEEDED)
        waits = record.blockers > 0 or any(e.kind == "error" for e in edges)
        record.state = State.WAITING if waits else State.QUEUED

    def _not_run(self, record: TaskRecord, cause: TaskRecord) -> None:
        message = not_run_message(cause.name, cause.id, cause.state.value)
        if cause.error is not None and cause.error.type == "DependencyError":
            message = cause.error.message
        record.state, record.finished_at = State.CANCELLED, time.time()
        record.error = ErrorInfo("DependencyError", message)
        self.moved(record)

    def _state(self, task_id: str) -> State | None:
        found = self._records.get(task_id)
        return None if found is None else found.state


def refuse_in_batch(calls: list[TaskCall[Any]]) -> None:
    """``depends_on`` is for one task at a time, as with the engine."""
    if any(call.options.depends_on for call in calls):
        raise InvalidArgumentsError("a task with depends_on is enqueued on its own (enqueue())")
