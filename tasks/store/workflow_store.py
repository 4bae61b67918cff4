"""The workflow half of a store, shared by both backends (see :mod:`tasks.store.graphs`).

Each backend has a module with the same names (``sqlite/workflows.py``,
``postgres/workflows.py``): the write functions, run as group-commit ``call``
requests, and the read queries with ``parameters`` (how its ``_read`` takes
one parameter).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from types import ModuleType
from typing import Any

from tasks.store.graphs import (
    Edge,
    NewWorkflow,
    StepInput,
    WorkflowRecord,
    input_from_row,
    workflow_from_rows,
)
from tasks.store.rows import record_from_row


class WorkflowStore:
    """:meth:`insert_workflow`, :meth:`cancel_workflow`, :meth:`workflow`,
    :meth:`step_inputs`, :meth:`task_edges`."""

    _workflow_sql: ModuleType

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    async def _read(self, sql: str, *args: Any) -> builtins.list[Any]:
        raise NotImplementedError

    async def insert_workflow(self, workflow: NewWorkflow) -> None:
        """Write a whole workflow in one transaction, or nothing.

        Steps without unmet needs are queued, the others wait. A parent that
        is not a step of ``workflow`` must exist (:class:`TaskNotFoundError`
        otherwise); a step needing one that failed or was cancelled is
        cancelled at once, and so are the steps that need it.
        """
        await self._call(self._workflow_sql.insert_workflow, workflow)

    async def cancel_workflow(self, workflow_id: str) -> builtins.list[str] | None:
        """Cancel every unfinished step (running ones are asked to stop); their ids,
        None if there is no workflow with that id."""
        ids: builtins.list[str] | None = await self._call(
            self._workflow_sql.cancel_workflow, workflow_id
        )
        return ids

    async def workflow(self, workflow_id: str) -> WorkflowRecord | None:
        """A workflow with every step as it is now, or None if there is none with that id."""
        sql = self._workflow_sql
        meta = await self._by(sql.WORKFLOW, workflow_id)
        if not meta:
            return None
        steps = [record_from_row(row) for row in await self._by(sql.STEPS, workflow_id)]
        edges = [Edge(*row) for row in await self._by(sql.EDGES, workflow_id)]
        return workflow_from_rows(meta[0], steps, edges)

    async def step_inputs(self, task_id: str) -> builtins.list[StepInput]:
        """What a step receives: the steps it needs (or whose failure starts it), in order."""
        return [input_from_row(row) for row in await self._by(self._workflow_sql.INPUTS, task_id)]

    async def task_edges(self, task_id: str) -> builtins.list[Edge]:
        """The workflow edges from and to a task (none for a plain task)."""
        return [Edge(*row) for row in await self._by(self._workflow_sql.TASK_EDGES, task_id)]

    async def _by(self, sql: str, key: str) -> builtins.list[Any]:
        """The rows of ``sql`` for its one parameter ``key``."""
        return await self._read(sql, *self._workflow_sql.parameters(key))
