"""Workflows in SQLite: writing one in a transaction, reading it, cancelling it.

The write functions take the plain ``sqlite3`` connection first and run
inside a group-commit transaction as ``call`` requests (SQLite has one writer
at a time, so a parent read here cannot change before the commit). The read
queries are run by :class:`~tasks.store.workflow_store.WorkflowStore`;
see :mod:`tasks.store.graphs`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from tasks.errors import TaskNotFoundError
from tasks.store.graphs import (
    NewWorkflow,
    not_run_message,
)
from tasks.store.queries import load_queries
from tasks.store.rows import COLUMNS
from tasks.store.sqlite.binding import chunks, marks
from tasks.store.sqlite.writes import insert_all

_SQL = load_queries("sqlite")
WORKFLOW = _SQL["workflow_get"]
STEPS = _SQL["workflow_steps"].format(columns=COLUMNS)
EDGES = _SQL["workflow_edges"]
INPUTS = _SQL["step_inputs"]
TASK_EDGES = _SQL["task_edges"]


def parameters(key: str) -> tuple[tuple[str]]:
    """The arguments after the SQL that give the store's ``_read`` one parameter."""
    return ((key,),)


def insert_workflow(conn: sqlite3.Connection, workflow: NewWorkflow) -> None:
    """Write ``workflow``: its steps, edges and row, each step waiting or queued."""
    outside = workflow.outside_parents
    found: dict[str, Any] = {}
    for chunk in chunks(outside):
        rows = conn.execute(_SQL["parents_found"].format(marks=marks(chunk)), chunk).fetchall()
        found.update((row[0], row) for row in rows)
    missing = [p for p in outside if p not in found]
    if missing:
        raise TaskNotFoundError(f"no task with id {missing[0]} to depend on")
    insert_all(conn, workflow.steps)
    conn.execute(
        _SQL["workflow_insert"],
        (
            workflow.id,
            workflow.kind,
            workflow.created_at,
            json.dumps(workflow.result_ids),
            workflow.result_kind,
        ),
    )
    conn.executemany(
        _SQL["edge_insert"], [(e.parent_id, e.child_id, e.kind, e.position) for e in workflow.edges]
    )
    conn.executemany(_SQL["join_workflow"], [(workflow.id, p) for p in outside])
    conn.executemany(
        _SQL["step_settle"],
        [(workflow.id, workflow.receives.get(s.id), s.id) for s in workflow.steps],
    )
    now = time.time()
    for edge in workflow.edges:
        parent = found.get(edge.parent_id)
        if edge.kind == "needs" and parent is not None and parent[1] in ("failed", "cancelled"):
            message = not_run_message(parent[2], parent[0], parent[1])
            conn.execute(_SQL["step_not_run"], (now, message, edge.child_id))


def cancel_workflow(conn: sqlite3.Connection, workflow_id: str) -> list[str] | None:
    """Cancel every unfinished step of ``workflow_id``; the ids of those it changed,
    None if there is no such workflow."""
    if not conn.execute(WORKFLOW, (workflow_id,)).fetchall():
        return None
    return [row[0] for row in conn.execute(_SQL["workflow_cancel"], (time.time(), workflow_id))]
