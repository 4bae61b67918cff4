"""Celery's canvas: signatures, ``chain``, ``group``, ``chord`` and ``|``, as Celery spells them.

Applying one (``apply_async``, ``delay``, calling a chain, group or chord)
compiles it into one workflow of :mod:`tasks.workflows`, written in one
transaction (:mod:`tasks.compat.canvas_compile`). As in Celery, ``task.s(2)``
is partial (in a chain it receives the previous result first; arguments given
when applied go before its own) and ``task.si(2)`` immutable; nested chains
flatten and a group followed by a task becomes a chord, whose body receives
the list of the group's results. ``chain(...)()`` gives the ``AsyncResult`` of
its last task (``.parent`` goes back), ``group(...)()`` a ``GroupResult``.
``link`` callbacks receive the result; a ``link_error`` errback receives the id
of the task that failed (Celery's ``errback(task_id)`` form). What cannot be
mapped raises :class:`CanvasError` (see ``docs/porting.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Union

from tasks.compat.bridge import run_blocking
from tasks.errors import InvalidArgumentsError

if TYPE_CHECKING:
    from tasks.compat.canvas_compile import Plan
    from tasks.compat.celery_group import GroupResult
    from tasks.compat.celery_result import AsyncResult
    from tasks.compat.celery_task import CeleryTask
    from tasks.extension import Tasks

CanvasResult = Union["AsyncResult[Any]", "GroupResult"]
Args = Iterable[Any] | None
Kwargs = dict[str, Any] | None
OPTIONS = frozenset({"queue", "priority", "countdown", "eta"})
"""The call options a canvas keeps; every other Celery option is refused."""


class CanvasError(InvalidArgumentsError):
    """A canvas, or a part of one, that has no equivalent here; the message says what to do."""


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` if every key is one of :data:`OPTIONS`; else :class:`CanvasError`."""
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise CanvasError(
            f"option {', '.join(unknown)} is not supported here; a signature or canvas takes"
            f" {', '.join(sorted(OPTIONS))}"
        )
    return options


class Canvas:
    """What signatures, chains, groups and chords share: ``|``, links, applying."""

    def __init__(self) -> None:
        self.links: list[Canvas] = []
        self.errbacks: list[Canvas] = []

    def __or__(self, other: Canvas) -> Canvas:
        return chain(self, other)

    def link(self, callback: Canvas) -> Canvas:
        """Apply ``callback`` with this one's result once it succeeded; returns ``callback``."""
        self.links.append(_canvas(callback))
        return callback

    def link_error(self, errback: Canvas) -> Canvas:
        """Apply ``errback`` with the failed task's id if this fails; returns ``errback``."""
        self.errbacks.append(_canvas(errback))
        return errback

    def on_error(self, errback: Canvas) -> Canvas:
        """:meth:`link_error`, returning this canvas (Celery's chaining form)."""
        self.link_error(errback)
        return self

    def tasks_facade(self) -> Tasks:
        """The :class:`~tasks.Tasks` the first task of this canvas belongs to."""
        raise NotImplementedError

    def apply_async(self, args: Args = None, kwargs: Kwargs = None, **options: Any) -> Any:
        """Enqueue (blocking; for threads): the result of the last task, or a GroupResult.

        ``args``/``kwargs`` go to the first tasks (before their own arguments, unless
        immutable), as do ``queue``, ``priority``, ``countdown`` and ``eta``;
        ``link=`` and ``link_error=`` (one or a list) add callbacks.
        """
        plan = self._plan(args, kwargs, options)
        name = f"{type(self).__name__}.apply_async()"
        return run_blocking(
            self.tasks_facade(), plan.apply, call=name, instead="await canvas.aapply_async(...)"
        )

    async def aapply_async(self, args: Args = None, kwargs: Kwargs = None, **options: Any) -> Any:
        """:meth:`apply_async` for ``async`` code."""
        return await self._plan(args, kwargs, options).apply()

    def _plan(self, args: Args, kwargs: Kwargs, options: dict[str, Any]) -> Plan:
        from tasks.compat.canvas_compile import compile_canvas

        link = _listed(options.pop("link", None))
        errbacks = _listed(options.pop("link_error", None))
        return compile_canvas(self, args, kwargs, link, errbacks, options)

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        """``apply_async(args, kwargs)`` (blocking; for threads)."""
        return self.apply_async(args, kwargs)

    async def adelay(self, *args: Any, **kwargs: Any) -> Any:
        """:meth:`delay` for ``async`` code."""
        return await self.aapply_async(args, kwargs)


class Signature(Canvas):
    """One task with arguments and options: ``task.s(...)``, ``task.si(...)``,
    ``task.signature(args, kwargs, **options)``."""

    def __init__(
        self,
        task: CeleryTask[Any],
        args: Iterable[Any] = (),
        kwargs: Kwargs = None,
        options: Kwargs = None,
        immutable: bool = False,
    ) -> None:
        super().__init__()
        self.task = task
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.options = check_options(dict(options or {}))
        self.immutable = immutable

    def __repr__(self) -> str:
        shown = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.task.name}{'!' if self.immutable else ''}({', '.join(shown)})"

    @property
    def name(self) -> str:
        """The task's registered name."""
        return self.task.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task here and now with the merged arguments (not queued), as Celery does."""
        if self.immutable:
            return self.task(*self.args, **self.kwargs)
        return self.task(*args, *self.args, **{**self.kwargs, **kwargs})

    def clone(self, args: Args = None, kwargs: Kwargs = None, **opts: Any) -> Signature:
        """A copy with ``args`` put first and ``kwargs``/``options`` merged (unless immutable)."""
        merged = self.args if self.immutable else (*(args or ()), *self.args)
        more = {} if self.immutable else dict(kwargs or {})
        copy = Signature(
            self.task, merged, {**self.kwargs, **more}, {**self.options, **opts}, self.immutable
        )
        copy.links, copy.errbacks = list(self.links), list(self.errbacks)
        return copy

    def set(self, immutable: bool | None = None, **options: Any) -> Signature:
        """Change options (``queue``, ``priority``, ``countdown``, ``eta``) in place; self."""
        self.options.update(check_options(options))
        if immutable is not None:
            self.immutable = immutable
        return self

    def tasks_facade(self) -> Tasks:
        return self.task.owner.tasks


class chain(Canvas):  # noqa: N801 (Celery's name)
    """Tasks one after another, each receiving the previous result (unless immutable).

    ``chain(a, b, c)`` or ``chain([a, b, c])``; calling it applies it.
    """

    def __init__(self, *tasks: Canvas | Iterable[Canvas]) -> None:
        super().__init__()
        items = _items(tasks)
        flat: list[Canvas] = []
        for item in items:
            if isinstance(item, chain) and not (item.links or item.errbacks):
                flat += item.tasks
            else:
                flat.append(item)
        self.tasks: list[Canvas] = []
        for item in flat:  # a group followed by a task is a chord, as Celery upgrades it
            last = self.tasks[-1] if self.tasks else None
            if isinstance(last, group) and not isinstance(item, group) and not last.links:
                self.tasks[-1] = chord(last, item)
            else:
                self.tasks.append(item)
        if not self.tasks:
            raise CanvasError("a chain needs at least one task")

    def __repr__(self) -> str:
        return " | ".join(repr(t) for t in self.tasks)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Apply the chain with ``args`` and ``kwargs`` for its first task (blocking)."""
        return self.apply_async(args, kwargs)

    def tasks_facade(self) -> Tasks:
        return self.tasks[0].tasks_facade()


class group(Canvas):  # noqa: N801 (Celery's name)
    """Tasks run in parallel; ``group(a, b)`` or ``group(iterable)``; nested groups flatten."""

    def __init__(self, *tasks: Canvas | Iterable[Canvas]) -> None:
        super().__init__()
        self.tasks: list[Canvas] = []
        for item in _items(tasks):
            if isinstance(item, group) and not (item.links or item.errbacks):
                self.tasks += item.tasks
            else:
                self.tasks.append(item)
        if not self.tasks:
            raise CanvasError("an empty group has nothing to run")

    def __repr__(self) -> str:
        return f"group([{', '.join(repr(t) for t in self.tasks)}])"

    def __or__(self, other: Canvas) -> Canvas:
        """A chord with ``other`` as its body (a group after a group stays a chain)."""
        return chain(self, other) if isinstance(other, group) else chord(self, other)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Apply the group, ``args``/``kwargs`` going to every task (blocking)."""
        return self.apply_async(args, kwargs)

    def tasks_facade(self) -> Tasks:
        return self.tasks[0].tasks_facade()


class chord(Canvas):  # noqa: N801 (Celery's name)
    """A group (the header) and a body applied with the list of its results, in order.

    ``chord(header, body)()`` or ``chord(header)(body)``; the result is the body's.
    """

    def __init__(self, header: Canvas | Iterable[Canvas], body: Canvas | None = None) -> None:
        super().__init__()
        self.header = header if isinstance(header, group) else group(header)
        self.body = None if body is None else _canvas(body)

    def __repr__(self) -> str:
        return f"chord({self.header!r}, {self.body!r})"

    def __call__(self, body: Canvas | None = None, **options: Any) -> Any:
        """Apply the chord, with ``body`` if it was built without one (blocking)."""
        return self.with_body(body).apply_async(**options)

    def with_body(self, body: Canvas | None) -> chord:
        """This chord, or a copy with ``body`` when one is given."""
        if body is None:
            return self
        copy = chord(self.header, body)
        copy.links, copy.errbacks = list(self.links), list(self.errbacks)
        return copy

    def tasks_facade(self) -> Tasks:
        return self.header.tasks_facade()


def signature(varies: Canvas | CeleryTask[Any], *args: Any, **kwargs: Any) -> Canvas:
    """Celery's ``signature(task, args, kwargs, **options)``; a canvas is returned as is.

    A task name needs the app: use ``celery.signature("name", ...)``.
    """
    if isinstance(varies, Canvas):
        return varies
    if isinstance(varies, str):
        raise CanvasError(f"signature({varies!r}): look names up with celery.signature(name)")
    return varies.signature(*args, **kwargs)


def _canvas(value: Any) -> Canvas:
    if not isinstance(value, Canvas):
        raise CanvasError(
            f"expected a signature (task.s(...)), chain, group or chord, not {type(value).__name__}"
        )
    return value


def _items(tasks: tuple[Canvas | Iterable[Canvas], ...]) -> list[Canvas]:
    only = tasks[0] if len(tasks) == 1 else None
    if only is not None and not isinstance(only, Canvas):
        return [_canvas(t) for t in only]
    return [_canvas(t) for t in tasks]


def _listed(value: Canvas | list[Canvas] | None) -> list[Canvas]:
    if value is None:
        return []
    return [_canvas(v) for v in value] if isinstance(value, list | tuple) else [_canvas(value)]
