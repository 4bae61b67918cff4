"""Workflows in PostgreSQL: writing one in a transaction, reading it, cancelling it.

The write functions take the group-commit :class:`~.writes.Tx` and run as
``call`` requests; the parents a new workflow needs are locked ``FOR UPDATE``
first, so that a parent ending concurrently either commits before (and is
seen as ended) or waits for this transaction (and its trigger then sees the
new edges). The read queries are run by
:class:`~tasks.store.workflow_store.WorkflowStore`. See
:mod:`tasks.store.graphs`.
"""

from __future__ import annotations

import json
from typing import Any

from tasks.errors import TaskNotFoundError
from tasks.store.graphs import (
    NewWorkflow,
    not_run_message,
)
from tasks.store.postgres.writes import Tx, insert_tasks
from tasks.store.queries import load_queries
from tasks.store.rows import COLUMNS

_SQL = load_queries("postgres")
WORKFLOW = _SQL["workflow_get"]
STEPS = _SQL["workflow_steps"].format(columns=COLUMNS)
EDGES = _SQL["workflow_edges"]
INPUTS = _SQL["step_inputs"]
TASK_EDGES = _SQL["task_edges"]


def parameters(key: str) -> tuple[str]:
    """The arguments after the SQL that give the store's ``_read`` one parameter."""
    return (key,)


async def insert_workflow(tx: Tx, workflow: NewWorkflow) -> None:
    """Write ``workflow``: its steps, edges and row, each step waiting or queued."""
    conn, outside = tx.conn, workflow.outside_parents
    found: dict[str, Any] = {}
    if outside:
        found = {row[0]: row for row in await conn.fetch(_SQL["parents_found"], outside)}
        missing = [p for p in outside if p not in found]
        if missing:
            raise TaskNotFoundError(f"no task with id {missing[0]} to depend on")
    await insert_tasks(conn, workflow.steps)
    await conn.execute(
        _SQL["workflow_insert"],
        workflow.id,
        workflow.kind,
        workflow.created_at,
        json.dumps(workflow.result_ids),
        workflow.result_kind,
    )
    edges = workflow.edges
    await conn.execute(
        _SQL["edges_insert"],
        [e.parent_id for e in edges],
        [e.child_id for e in edges],
        [e.kind for e in edges],
        [e.position for e in edges],
    )
    if outside:
        await conn.execute(_SQL["join_workflow"], workflow.id, outside)
    steps = workflow.steps
    await conn.execute(
        _SQL["steps_settle"],
        workflow.id,
        [s.id for s in steps],
        [workflow.receives.get(s.id) for s in steps],
    )
    for edge in edges:
        parent = found.get(edge.parent_id)
        if edge.kind == "needs" and parent is not None and parent[1] in ("failed", "cancelled"):
            message = not_run_message(parent[2], parent[0], parent[1])
            await conn.execute(_SQL["step_not_run"], tx.now, message, edge.child_id)
    tx.notify = True


async def cancel_workflow(tx: Tx, workflow_id: str) -> list[str] | None:
    """Cancel every unfinished step of ``workflow_id``; the ids of those it changed,
    None if there is no such workflow."""
    if not await tx.conn.fetch(WORKFLOW, workflow_id):
        return None
    return [row[0] for row in await tx.conn.fetch(_SQL["workflow_cancel"], tx.now, workflow_id)]
