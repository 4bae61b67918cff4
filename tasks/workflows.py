"""Composing tasks: chains, groups, chords and error steps, enqueued as one workflow.

Build a workflow from steps and enqueue it in one transaction::

    handle = await tasks.chain(fetch.call(url), parse.then(), store.then()).enqueue()
    total = await tasks.chord([size.call(p) for p in paths], add_up.then()).enqueue()

A step is a :class:`~tasks.registry.TaskCall` (``task.call(...)``: runs with
exactly its arguments) or a :class:`Then` (``task.then(...)``: receives what
the steps before it gave as its first argument, then its own). In a chain
each step needs the one before; a group's steps run in parallel and give the
list of their results, in order; a chord is a group and the step that
receives that list. ``on_error(step.then())`` adds an error step that runs
once, with the id of the step that failed, if any step fails.

The structure is written to the store with the steps (:mod:`tasks.store.graphs`)
and moved on by the database in the transaction that ends each step, so a
crash between two steps neither loses the next nor runs it twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from tasks.errors import InvalidArgumentsError, WorkflowNotFoundError
from tasks.model import NewTask, new_id
from tasks.registry import EnqueueOptions, TaskCall
from tasks.store.graphs import (
    MAX_DEPTH,
    MAX_STEPS,
    Edge,
    NewWorkflow,
    Receives,
    ResultKind,
    WorkflowRecord,
)

if TYPE_CHECKING:
    from tasks.extension import Tasks
    from tasks.registry import Task
    from tasks.workflow_handle import WorkflowHandle

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Then(Generic[A, R_co]):
    """A step that receives what the steps before it gave (an ``A``) as its first
    argument, followed by ``args`` and ``kwargs``; built by ``task.then(...)``."""

    task: Task[..., R_co]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: EnqueueOptions = field(default_factory=EnqueueOptions)


Step = TaskCall[Any] | Then[Any, Any]
RowMaker = Callable[[TaskCall[Any], float], NewTask]
"""Turns one step's call, enqueued at a time, into its row (``enqueueing.new_task``)."""


@dataclass(frozen=True, slots=True)
class _Exit:
    """Where a compiled part ends: the steps whose results it gives, one or a list."""

    ids: list[str]
    kind: ResultKind


class Workflow(Generic[R]):
    """A composed workflow whose result is an ``R``; enqueue it with :meth:`enqueue`."""

    kind = "workflow"
    _error_steps: tuple[Then[str, Any], ...] = ()

    def __init__(self, tasks: Tasks) -> None:
        self._tasks = tasks

    def on_error(self, step: Then[str, Any]) -> Workflow[R]:
        """The same workflow with an error step: it runs once, receiving the id of the
        step that failed, if any step fails (after its retries)."""
        if not isinstance(step, Then):
            raise InvalidArgumentsError("an error step receives the failed step's id: use .then()")
        copy = self._copy()
        copy._error_steps = (*self._error_steps, step)
        return copy

    async def enqueue(self) -> WorkflowHandle[R]:
        """Write every step in one transaction; returns once committed."""
        from tasks import workflow_handle

        return await workflow_handle.enqueue_workflow(self._tasks, self)

    def _copy(self) -> Workflow[R]:
        raise NotImplementedError

    def _compile(self, builder: _Builder, needs: _Exit | None) -> _Exit:
        raise NotImplementedError

    def build(self, make_row: RowMaker, now: float | None = None) -> NewWorkflow:
        """The rows and edges to write (checked: sizes, keys, what each step receives);
        ``make_row(call, now)`` turns each step into its row."""
        builder = _Builder(make_row, time.time() if now is None else now)
        end = self._compile(builder, None)
        own = [step.id for step in builder.steps]
        for error_step in self._error_steps:
            builder.add_error_step(error_step, own)
        return builder.workflow(self.kind, end)


class Chain(Workflow[R]):
    """Steps one after another; each starts when the one before succeeded."""

    kind = "chain"

    def __init__(self, tasks: Tasks, parts: Sequence[Step | Workflow[Any]]) -> None:
        super().__init__(tasks)
        if not parts:
            raise InvalidArgumentsError("a chain needs at least one step")
        self.parts = tuple(parts)

    def _copy(self) -> Chain[R]:
        copy = Chain[R](self._tasks, self.parts)
        copy._error_steps = self._error_steps
        return copy

    def _compile(self, builder: _Builder, needs: _Exit | None) -> _Exit:
        for part in self.parts:
            needs = builder.part(part, needs)
        assert needs is not None
        return needs


class Group(Workflow[list[R]]):
    """Steps that run in parallel; the result is the list of theirs, in order."""

    kind = "group"

    def __init__(self, tasks: Tasks, parts: Iterable[Step | Workflow[Any]]) -> None:
        super().__init__(tasks)
        self.parts = tuple(parts)
        if not self.parts:
            raise InvalidArgumentsError("a group needs at least one step")

    def _copy(self) -> Group[R]:
        copy = Group[R](self._tasks, self.parts)
        copy._error_steps = self._error_steps
        return copy

    def _compile(self, builder: _Builder, needs: _Exit | None) -> _Exit:
        ids: list[str] = []
        for part in self.parts:
            end = builder.part(part, needs)
            ids += end.ids
        return _Exit(ids, "list")


class Chord(Workflow[R]):
    """A group, then one step that receives the list of its results."""

    kind = "chord"

    def __init__(self, tasks: Tasks, header: Group[Any], body: Step | Workflow[Any]) -> None:
        super().__init__(tasks)
        self.header = header
        self.body = body

    def _copy(self) -> Chord[R]:
        copy = Chord[R](self._tasks, self.header, self.body)
        copy._error_steps = self._error_steps
        return copy

    def _compile(self, builder: _Builder, needs: _Exit | None) -> _Exit:
        return builder.part(self.body, self.header._compile(builder, needs))


@dataclass(slots=True)
class _Builder:
    """Collects rows and edges while a workflow compiles."""

    make_row: RowMaker
    now: float
    id: str = field(default_factory=new_id)
    steps: list[NewTask] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    receives: dict[str, Receives] = field(default_factory=dict)
    depths: dict[str, int] = field(default_factory=dict)

    def part(self, part: Step | Workflow[Any], needs: _Exit | None) -> _Exit:
        if isinstance(part, Workflow):
            if part._error_steps:
                raise InvalidArgumentsError("on_error applies to a whole workflow, not a part")
            return part._compile(self, needs)
        if isinstance(part, TaskCall | Then):
            return _Exit([self.step(part, needs)], "one")
        raise InvalidArgumentsError(
            f"a workflow step is task.call(...) or task.then(...), not {type(part).__name__}"
        )

    def step(self, step: Step, needs: _Exit | None) -> str:
        """Add one step that needs ``needs``; its id."""
        if isinstance(step, Then):
            if needs is None:
                raise InvalidArgumentsError(
                    f"step {step.task.name} receives the result of the step before it, but"
                    " it comes first: use .call() for a first step"
                )
            call: TaskCall[Any] = TaskCall(step.task, step.args, step.kwargs, step.options)
        else:
            call = step
        row = self._row(call)
        level = 1 + max((self.depths[p] for p in needs.ids), default=0) if needs else 1
        if level > MAX_DEPTH:
            raise InvalidArgumentsError(
                f"a workflow is at most {MAX_DEPTH} steps deep (its longest chain);"
                " split a longer one, or give it fewer, bigger steps"
            )
        self.depths[row.id] = level
        if isinstance(step, Then) and needs is not None:
            self.receives[row.id] = "result" if needs.kind == "one" else "results"
        for position, parent in enumerate(needs.ids if needs else ()):
            self.edges.append(Edge(parent, row.id, "needs", position))
        return row.id

    def add_error_step(self, step: Then[str, Any], watched: list[str]) -> None:
        row = self._row(TaskCall(step.task, step.args, step.kwargs, step.options))
        self.receives[row.id] = "failure"
        self.edges += [Edge(parent, row.id, "error", n) for n, parent in enumerate(watched)]

    def _row(self, call: TaskCall[Any]) -> NewTask:
        options = call.options
        if options.idempotency_key or options.unique_key:
            raise InvalidArgumentsError(
                f"step {call.task.name}: idempotency and unique keys do not apply to workflow steps"
            )
        if options.depends_on:
            raise InvalidArgumentsError(
                f"step {call.task.name}: depends_on is for single tasks; in a workflow the"
                " structure says what a step needs"
            )
        if len(self.steps) >= MAX_STEPS:
            raise InvalidArgumentsError(f"a workflow has at most {MAX_STEPS} steps")
        row = self.make_row(call, self.now)
        self.steps.append(row)
        return row

    def workflow(self, kind: str, end: _Exit) -> NewWorkflow:
        return NewWorkflow(
            self.id, kind, self.now, self.steps, self.edges, end.ids, end.kind, self.receives
        )


def check_then(task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Raise :class:`InvalidArgumentsError` unless ``task`` takes one more argument first."""
    try:
        task.signature.bind(None, *args, **kwargs)
    except TypeError as exc:
        raise InvalidArgumentsError(
            f"arguments do not fit task {task.name} after the result it receives: {exc}"
        ) from exc


class WorkflowMethods:
    """``chain``, ``group``, ``chord``, ``get_workflow`` and ``cancel_workflow``; mixed
    into :class:`~tasks.Tasks`."""

    @overload
    def chain(self, a: TaskCall[A], /) -> Chain[A]: ...
    @overload
    def chain(self, a: TaskCall[A], b: Then[A, B], /) -> Chain[B]: ...
    @overload
    def chain(self, a: TaskCall[A], b: Then[A, B], c: Then[B, C], /) -> Chain[C]: ...
    @overload
    def chain(self, a: TaskCall[A], b: Then[A, B], c: Then[B, C], d: Then[C, D], /) -> Chain[D]: ...
    @overload
    def chain(self, *parts: Step | Workflow[Any]) -> Chain[Any]: ...
    def chain(self, *parts: Step | Workflow[Any]) -> Chain[Any]:
        """Steps one after another, each receiving the previous result if built with
        ``.then()``; typed when every part is a step (up to four)."""
        return Chain[Any](self._facade(), parts)

    def group(self, parts: Iterable[TaskCall[R] | Workflow[R]]) -> Group[R]:
        """Steps run in parallel; the result is the list of their results, in order."""
        return Group[R](self._facade(), parts)

    def chord(
        self, header: Group[A] | Iterable[TaskCall[A] | Workflow[A]], body: Then[list[A], R]
    ) -> Chord[R]:
        """A group, then ``body``, which receives the list of the group's results."""
        if not isinstance(header, Group):
            header = Group[A](self._facade(), header)
        return Chord[R](self._facade(), header, body)

    async def get_workflow(self, workflow_id: str) -> WorkflowRecord:
        """A workflow with each step as it is now; raises WorkflowNotFoundError."""
        mode = self._facade().test_mode
        if mode is not None and mode.knows_workflow(workflow_id):
            return mode.get_workflow(workflow_id)
        found = await self._facade().store.workflow(workflow_id)
        if found is None:
            raise WorkflowNotFoundError(f"no workflow with id {workflow_id}")
        return found

    async def cancel_workflow(self, workflow_id: str) -> int:
        """Cancel every unfinished step of a workflow (running ones are asked to stop);
        how many. Raises WorkflowNotFoundError."""
        mode = self._facade().test_mode
        if mode is not None and mode.knows_workflow(workflow_id):
            unfinished = [s for s in mode.get_workflow(workflow_id).steps if not s.done]
            for step in unfinished:
                if not step.done:  # cancelling one cancels the steps that need it
                    mode.cancel(step.id)
            return len(unfinished)
        rt = self._facade().runtime
        changed = await rt.store.cancel_workflow(workflow_id)
        if changed is None:
            raise WorkflowNotFoundError(f"no workflow with id {workflow_id}")
        for task_id in changed:
            if rt.dispatcher is not None:
                rt.dispatcher.cancel_local(task_id)
            rt.bus.touch(task_id)
        return len(changed)

    def _facade(self) -> Tasks:
        return cast("Tasks", self)
