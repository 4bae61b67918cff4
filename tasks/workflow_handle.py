"""Enqueueing workflows and following them: :class:`WorkflowHandle`.

:func:`enqueue_workflow` writes a built workflow (:mod:`tasks.workflows`) in
one transaction; :func:`enqueue_dependent` does the same for one task with
``depends_on``. The handle reads the workflow back from the store and waits
for the steps that give its result.
"""

from __future__ import annotations

import contextlib
import functools
import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from tasks.enqueueing import accepting_runtime, announce, new_task
from tasks.errors import TaskNotFoundError
from tasks.handle import TaskHandle
from tasks.model import new_id
from tasks.registry import TaskCall
from tasks.store.graphs import Edge, NewWorkflow, ResultKind, WorkflowRecord
from tasks.testing_workflows import test_row

if TYPE_CHECKING:
    from tasks.extension import Tasks
    from tasks.workflows import RowMaker, Workflow

R = TypeVar("R")


class WorkflowHandle(Generic[R]):
    """Returned by ``workflow.enqueue()``: every step is stored by the time you hold it.

    ``step_ids`` are the steps in the order they were built; ``last`` is the
    handle of the step whose result is the workflow's (for a group or a
    workflow ending in one, :meth:`result` is the list of several).
    """

    def __init__(
        self,
        tasks: Tasks,
        workflow_id: str,
        step_ids: list[str],
        result_ids: list[str],
        result_kind: ResultKind,
    ) -> None:
        self._tasks = tasks
        self.id = workflow_id
        self.step_ids = step_ids
        self.result_ids = result_ids
        self.result_kind = result_kind

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.id} steps={len(self.step_ids)}>"

    @property
    def last(self) -> TaskHandle[Any]:
        """The handle of the last step that gives the result."""
        return TaskHandle[Any](self._tasks, self.result_ids[-1])

    async def status(self) -> WorkflowRecord:
        """The workflow with each step as it is now."""
        return await self._tasks.get_workflow(self.id)

    async def wait(self, timeout: float | None = None) -> WorkflowRecord:
        """Wait until every step has finished (in any state: a failure cancels the steps
        that need it; an unneeded error step is dropped). Raises ``TimeoutError``
        after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for task_id in self.step_ids:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            with contextlib.suppress(TaskNotFoundError):  # an error step that was dropped
                await self._tasks.wait(task_id, left)
        return await self.status()

    async def result(self, timeout: float | None = None) -> R:
        """The workflow's result: the last step's, or the list of a final group's.

        Raises :class:`~tasks.errors.TaskFailedError` naming the step that did
        not succeed (a step cancelled because an earlier one failed says which).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        results = []
        for task_id in self.result_ids:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            results.append(await TaskHandle[Any](self._tasks, task_id).result(left))
        return cast(R, results[0] if self.result_kind == "one" else results)

    async def cancel(self) -> int:
        """Cancel every unfinished step (running ones are asked to stop); how many."""
        return await self._tasks.cancel_workflow(self.id)


def _row_maker(tasks: Tasks) -> RowMaker:
    if tasks.test_mode is not None:
        return test_row
    return functools.partial(new_task, accepting_runtime(tasks))


async def enqueue_workflow(tasks: Tasks, workflow: Workflow[R]) -> WorkflowHandle[R]:
    """Write ``workflow`` in one transaction; its handle once committed."""
    new = workflow.build(_row_maker(tasks))
    await _write(tasks, new)
    steps = [s.id for s in new.steps]
    return WorkflowHandle[R](tasks, new.id, steps, new.result_ids, new.result_kind)


async def enqueue_dependent(tasks: Tasks, call: TaskCall[R]) -> TaskHandle[R]:
    """Write one task that waits for ``call.options.depends_on`` (a workflow of its own,
    which those tasks join if they are in none)."""
    now = time.time()
    row = _row_maker(tasks)(call, now)
    parents = list(dict.fromkeys(call.options.depends_on))
    for parent in parents:
        if not isinstance(parent, str) or not parent:
            raise TaskNotFoundError(f"depends_on names no task: {parent!r}")
    edges = [Edge(parent, row.id, "needs", n) for n, parent in enumerate(parents)]
    await _write(tasks, NewWorkflow(new_id(), "depends", now, [row], edges, [row.id]))
    return TaskHandle[R](tasks, row.id)


async def _write(tasks: Tasks, workflow: NewWorkflow) -> None:
    if tasks.test_mode is not None:
        await tasks.test_mode.enqueue_workflow(workflow)
        return
    rt = accepting_runtime(tasks)
    now = workflow.created_at
    rt.wake()  # before the insert is submitted: see enqueueing.enqueue_rows
    await rt.store.insert_workflow(workflow)
    for row in workflow.steps:
        if row.run_at > now:
            rt.wake_at(row.run_at)
    await announce(rt, workflow.steps)
