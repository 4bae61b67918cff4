"""The workflow page's one live stream: its steps as they change, and the workflow's state.

``GET /tasks/dashboard/workflow/<id>/events`` works like the list page's stream
(:mod:`tasks.web.live`): no queue of events; each round re-reads the steps'
summaries (bounded in size, at most 1,000 steps in two queries) and sends those
whose ``version`` differs from what it sent. Rounds run when this process
commits a change to one of the steps, and every ``poll_interval`` seconds
otherwise (changes made by other processes, and steps the database moved on by
itself). A reconnecting client gets every step again.

Events: ``step`` (a ``StepOut``), ``removed`` (``{"id"}``: an error step the
store dropped once it was not needed) and ``workflow`` (``{"id", "state",
"done", "counts"}``, when it changes). The stream ends after the ``workflow``
event that says ``done``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from tasks.extension import Tasks
from tasks.model import State
from tasks.store.graphs import WorkflowRecord
from tasks.summary import TaskSummary
from tasks.web.rounds import paced_rounds
from tasks.web.shutdown import Terminated
from tasks.web.workflow_views import parents_of, status_view, step_view

READ_BATCH = 500
"""Ids per summary query (the store's bound)."""
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def _event(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {_ENCODER.encode(data)}\n\n".encode()


async def _summaries(tasks: Tasks, ids: list[str]) -> dict[str, TaskSummary]:
    found: dict[str, TaskSummary] = {}
    for start in range(0, len(ids), READ_BATCH):
        for summary in await tasks.store.get_summaries(ids[start : start + READ_BATCH]):
            found[summary.id] = summary
    return found


def workflow_events(
    tasks: Tasks,
    workflow: WorkflowRecord,
    *,
    terminated: Terminated | None,
    poll_interval: float,
    keepalive: float,
) -> AsyncIterator[bytes]:
    """The stream of ``step``, ``removed`` and ``workflow`` events, until the workflow is
    done, the client leaves or the server stops (see the module)."""
    state = _WorkflowRound(tasks, workflow)
    return paced_rounds(
        tasks,
        state.round,
        wakes=lambda event: event.task_id in state.followed,
        terminated=terminated,
        poll_interval=poll_interval,
        keepalive=keepalive,
    )


class _WorkflowRound:
    """What one workflow stream has sent, and one round of it."""

    def __init__(self, tasks: Tasks, workflow: WorkflowRecord) -> None:
        self.tasks, self.workflow = tasks, workflow
        self.step_ids = sorted(step.id for step in workflow.steps)
        self.followed = set(self.step_ids)
        self.parents = parents_of(workflow.edges)
        self.sent: dict[str, int] = {}
        self.status: dict[str, Any] | None = None

    async def round(self) -> tuple[list[bytes], bool]:
        found = await _summaries(self.tasks, self.step_ids)
        out: list[bytes] = []
        states: dict[str, State] = {}
        for task_id in self.step_ids:
            summary = found.get(task_id)
            if summary is None:
                out.append(_event("removed", {"id": task_id}))
                continue
            states[task_id] = summary.state
            if self.sent.get(task_id) != summary.version:
                self.sent[task_id] = summary.version
                out.append(_event("step", step_view(summary, self.parents.get(task_id, []))))
        self.step_ids = list(states)
        now = status_view(self.workflow.id, states, self.workflow.result_ids)
        if now != self.status:
            self.status = now
            out.append(_event("workflow", now))
        return out, bool(now["done"])
