"""Compiling a Celery canvas (:mod:`tasks.compat.celery_canvas`) into one native workflow.

Each signature becomes a step of :mod:`tasks.workflows`: ``task.then(...)``
where it receives what came before (a partial signature after another
task), else ``task.call(...)``; chains, groups and chords become ``Chain``,
``Group`` and ``Chord``. ``link`` callbacks become steps after the end of
the canvas, and ``link_error`` errbacks the workflow's error steps, so both
are allowed only on the canvas applied and on the task that gives its result
(anywhere else the native structure cannot hold them: :class:`CanvasError`).

A lone signature without callbacks is enqueued as a plain task. Otherwise the
results handed back are found by the position of each step in the
workflow's ``step_ids``, which list steps in the order the builder visits
them: chain and group parts in order, a chord's header before its body.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tasks.compat.celery_canvas import (
    Canvas,
    CanvasError,
    CanvasResult,
    Signature,
    chain,
    check_options,
    chord,
    group,
)
from tasks.compat.celery_group import GroupResult
from tasks.compat.celery_result import AsyncResult
from tasks.registry import TaskCall
from tasks.workflows import Chain, Chord, Group, Step, Then, Workflow

if TYPE_CHECKING:
    from tasks.extension import Tasks
    from tasks.workflow_handle import WorkflowHandle

Part = Step | Workflow[Any]


@dataclass(frozen=True, slots=True)
class _Entry:
    """What applying a canvas gives its first tasks: arguments first, and options."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any]


@dataclass(slots=True)
class _Shape:
    """Which result a part gives: one step's, a group's list, or a sequence's last."""

    kind: str  # "step", "group" or "sequence" (a chain; a chord is header then body)
    step: Step | None = None
    members: list[_Shape] = field(default_factory=list)


@dataclass(slots=True)
class Plan:
    """A compiled canvas, ready to enqueue with :meth:`apply`."""

    tasks: Tasks
    part: Part
    shape: _Shape
    tracks_started: Any

    async def apply(self) -> CanvasResult:
        """Enqueue in one transaction; the result of what the canvas gives."""
        if isinstance(self.part, TaskCall):
            handle = await self.tasks.enqueue_call(self.part)
            return AsyncResult[Any](handle.id, self.tasks, self.tracks_started)
        workflow = _workflow(self.tasks, self.part)
        flow = await workflow.enqueue()
        steps = list(_steps(workflow))  # error steps come after these in step_ids
        ids = {id(step): flow.step_ids[n] for n, step in enumerate(steps)}
        return self._result(self.shape, flow, ids, None)

    def _result(
        self, shape: _Shape, flow: WorkflowHandle[Any], ids: dict[int, str], parent: Any
    ) -> CanvasResult:
        if shape.kind == "step":
            one = AsyncResult[Any](ids[id(shape.step)], self.tasks, self.tracks_started)
            one.parent = parent
            return one
        if shape.kind == "group":
            members = [self._result(m, flow, ids, parent) for m in shape.members]
            many = GroupResult(flow.id, members, self.tasks)
            many.parent = parent
            return many
        for member in shape.members:
            parent = self._result(member, flow, ids, parent)
        return parent  # type: ignore[no-any-return]


def compile_canvas(
    canvas: Canvas,
    args: Iterable[Any] | None,
    kwargs: dict[str, Any] | None,
    links: list[Canvas],
    errbacks: list[Canvas],
    options: dict[str, Any],
) -> Plan:
    """Check ``canvas`` and build its workflow; raises :class:`CanvasError` for what has
    no equivalent and ``InvalidArgumentsError`` for arguments that do not fit."""
    tasks = canvas.tasks_facade()
    entry = _Entry(tuple(args or ()), dict(kwargs or {}), check_options(dict(options)))
    compiler = _Compiler(tasks, [*links], [*errbacks])
    part, shape = compiler.part(canvas, False, entry, True)
    if compiler.links:
        if _final(shape).kind == "group":
            raise CanvasError("link on a group: use a chord, group(...) | callback.s()")
        after = [compiler.part(link, True, None, False)[0] for link in compiler.links]
        tail = after[0] if len(after) == 1 else Group[Any](tasks, after)
        part = Chain[Any](tasks, [part, tail])
    if compiler.errbacks:
        workflow = _workflow(tasks, part)
        for errback in compiler.errbacks:
            workflow = workflow.on_error(_errback(errback))
        part = workflow
    owner = _first_signature(canvas).task.owner
    return Plan(tasks, part, shape, owner.tracks_started)


@dataclass(slots=True)
class _Compiler:
    tasks: Tasks
    links: list[Canvas]
    errbacks: list[Canvas]

    def part(
        self, canvas: Canvas, after: bool, entry: _Entry | None, at_end: bool
    ) -> tuple[Part, _Shape]:
        """``canvas`` as a native part; ``after``: something runs before it; ``at_end``:
        it gives the result of the whole canvas (so it may carry callbacks)."""
        if canvas.links or canvas.errbacks:
            if not at_end:
                raise CanvasError(
                    f"link/link_error on {canvas!r}: here only the canvas applied and its last"
                    " task can have callbacks; make the callback a step of the chain instead"
                )
            self.links += canvas.links
            self.errbacks += canvas.errbacks
        if isinstance(canvas, Signature):
            step = _step(canvas, after, entry)
            return step, _Shape("step", step)
        if isinstance(canvas, chord):
            if canvas.body is None:
                raise CanvasError("a chord needs a body: chord(header)(body) or chord(header, b)")
            header, header_shape = self.part(canvas.header, after, entry, False)
            body, body_shape = self.part(canvas.body, True, None, at_end)
            assert isinstance(header, Group)
            return Chord[Any](self.tasks, header, body), _Shape(
                "sequence", members=[header_shape, body_shape]
            )
        if isinstance(canvas, chain):
            last = len(canvas.tasks) - 1
            compiled = [
                self.part(t, after or n > 0, entry if n == 0 else None, at_end and n == last)
                for n, t in enumerate(canvas.tasks)
            ]
            shape = _Shape("sequence", None, [shape for _, shape in compiled])
            return Chain[Any](self.tasks, [p for p, _ in compiled]), shape
        if isinstance(canvas, group):
            compiled = [self.part(t, after, entry, False) for t in canvas.tasks]
            shapes = [shape for _, shape in compiled]
            return Group[Any](self.tasks, [p for p, _ in compiled]), _Shape("group", None, shapes)
        raise CanvasError(f"{type(canvas).__name__} is not a canvas this layer knows")


def _step(sig: Signature, after: bool, entry: _Entry | None) -> Step:
    args, kwargs, options = sig.args, dict(sig.kwargs), dict(sig.options)
    if entry is not None:
        if not sig.immutable:
            args, kwargs = (*entry.args, *args), {**kwargs, **entry.kwargs}
        options.update(entry.options)
    if after and ("countdown" in options or "eta" in options):
        raise CanvasError(
            f"countdown/eta on {sig!r}: only the first tasks of a canvas can be delayed"
        )
    configured = sig.task.task.options(**_engine_options(options))
    if after and not sig.immutable:
        return configured.then(*args, **kwargs)
    return configured.call(*args, **kwargs)


def _engine_options(options: dict[str, Any]) -> dict[str, Any]:
    eta: datetime | None = options.get("eta")
    if eta is not None and options.get("countdown") is not None:
        raise CanvasError("give countdown or eta, not both")
    run_at = None if eta is None else (eta if eta.tzinfo else eta.replace(tzinfo=UTC)).timestamp()
    return {
        "queue": options.get("queue"),
        "priority": options.get("priority"),
        "delay": options.get("countdown"),
        "run_at": run_at,
    }


def _errback(errback: Canvas) -> Then[str, Any]:
    """An errback as an error step: it receives the failed task's id, then its own arguments."""
    if not isinstance(errback, Signature):
        raise CanvasError(f"link_error takes one task's signature (task.s(...)), not {errback!r}")
    if errback.immutable:
        raise CanvasError(
            f"errback {errback!r} is immutable (.si()), but an errback here always receives the"
            " id of the task that failed: make it with .s() and take task_id first"
        )
    if errback.links or errback.errbacks or errback.options:
        raise CanvasError(f"errback {errback!r}: an errback carries no callbacks or options")
    if _takes_request(errback):
        raise CanvasError(
            f"errback {errback.name} takes (request, exc, traceback), which Celery passes only"
            " inside its worker process; here an errback is a stored task: define it as"
            " def handler(task_id) and read celery.AsyncResult(task_id) for the exception"
        )
    return errback.task.task.then(*errback.args, **errback.kwargs)


def _takes_request(errback: Signature) -> bool:
    """Celery's test: an unbound errback taking more than one positional argument is the
    ``(request, exc, traceback)`` kind."""
    if errback.task.bind:
        return False
    kinds = [p.kind for p in inspect.signature(errback.task.fn).parameters.values()]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(k in positional for k in kinds) > 1 or inspect.Parameter.VAR_POSITIONAL in kinds


def _workflow(tasks: Tasks, part: Part) -> Workflow[Any]:
    return part if isinstance(part, Workflow) else Chain[Any](tasks, [part])


def _final(shape: _Shape) -> _Shape:
    while shape.kind == "sequence":
        shape = shape.members[-1]
    return shape


def _first_signature(canvas: Canvas) -> Signature:
    if isinstance(canvas, Signature):
        return canvas
    if isinstance(canvas, chord):
        return _first_signature(canvas.header)
    assert isinstance(canvas, chain | group)
    return _first_signature(canvas.tasks[0])


def _steps(part: Part) -> Iterator[Step]:
    """The steps of ``part`` in the order the workflow builder writes them."""
    if isinstance(part, Chain | Group):
        for child in part.parts:
            yield from _steps(child)
    elif isinstance(part, Chord):
        yield from _steps(part.header)
        yield from _steps(part.body)
    elif isinstance(part, Workflow):
        raise CanvasError(f"unexpected workflow part {type(part).__name__}")
    else:
        yield part
