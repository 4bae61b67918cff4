"""Lifecycle hooks: user functions called when a task is enqueued, starts and ends.

Register with the decorators of :class:`~tasks.Tasks` (``@tasks.on_enqueue``,
``@tasks.before_run``, ``@tasks.after_run``, ``@tasks.on_failure``) or with
``tasks.hooks.add("after_run", fn)``. Contract:

* ``on_enqueue(record)`` -- in the process that enqueued, once the new task's
  row is committed (with :meth:`~tasks.Tasks.enqueue_in`: written in the
  caller's transaction, not yet committed). Not called when an idempotency
  key matched an existing task.
* ``before_run(record)`` -- in the process that claimed the task, just before
  its body starts (for ``executor="process"`` tasks: in that process, not in
  the pool process), inside the task's log fields and trace span.
* ``after_run(record, outcome)`` -- there too, once the run's outcome is
  committed, for every outcome (succeeded, retried, snoozed, failed,
  cancelled, released at shutdown). ``record`` is the task as claimed.
* ``on_failure(record, outcome)`` -- there too, after ``after_run``, when the
  task failed for good (no retry left, or an error that is not retried).

A hook may be a plain function (called on the event loop: keep it quick) or
a coroutine function (awaited). Hooks of one kind run in the order they were
added. A hook that raises is logged at ERROR with its traceback, naming the
hook and the task, and the next hook still runs; the task is never failed,
retried or lost because of a hook (its outcome is already committed, or, for
``before_run``, the body runs anyway).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

from tasks.model import ErrorInfo, State, TaskRecord

log = logging.getLogger("tasks")

HookName = Literal["on_enqueue", "before_run", "after_run", "on_failure"]
HOOK_NAMES: tuple[HookName, ...] = get_args(HookName)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How one run ended, as committed; what ``after_run`` and ``on_failure`` receive."""

    outcome: str
    """``succeeded``, ``failed``, ``retried``, ``snoozed``, ``released`` or ``cancelled``."""
    state: State
    """The task's state after the run (``queued`` for a retry, snooze or release)."""
    duration: float
    """Seconds from the body's start to its end."""
    error: ErrorInfo | None = None
    """The error recorded for this run (failed or retried), with its traceback text."""
    exception: BaseException | None = None
    """The exception the body raised in this process (None for a pool process's error)."""


class Hooks:
    """The hooks registered on one :class:`~tasks.Tasks`, by kind."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Callable[..., Any]]] = {name: [] for name in HOOK_NAMES}

    def add(self, name: HookName, fn: F) -> F:
        """Register ``fn`` as a ``name`` hook; returns it (usable as a decorator)."""
        if name not in self._hooks:
            raise ValueError(f"unknown hook {name!r}; the hooks are {', '.join(HOOK_NAMES)}")
        if not callable(fn):
            raise TypeError(f"a {name} hook must be callable, got {fn!r}")
        self._hooks[name].append(fn)
        return fn

    def remove(self, name: HookName, fn: Callable[..., Any]) -> None:
        """Unregister ``fn``; removing one that was never added is a no-op."""
        hooks = self._hooks.get(name, [])
        if fn in hooks:
            hooks.remove(fn)

    def has(self, name: HookName) -> bool:
        """Whether any ``name`` hook is registered (the hot path skips the call when not)."""
        return bool(self._hooks[name])

    async def run(self, name: HookName, record: TaskRecord, *more: Any) -> None:
        """Call every ``name`` hook with ``(record, *more)``; never raises ``Exception``."""
        for fn in list(self._hooks[name]):
            try:
                result = fn(record, *more)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception(
                    "%s hook %s failed for task %s %s; the task is not affected",
                    name,
                    getattr(fn, "__qualname__", repr(fn)),
                    record.name,
                    record.id,
                )


class HookMethods:
    """The hook decorators of :class:`~tasks.Tasks` (a mixin, so the facade stays thin)."""

    hooks: Hooks

    def on_enqueue(self, fn: F) -> F:
        """``@tasks.on_enqueue``: call ``fn(record)`` once a new task is stored."""
        return self.hooks.add("on_enqueue", fn)

    def before_run(self, fn: F) -> F:
        """``@tasks.before_run``: call ``fn(record)`` before each run's body starts."""
        return self.hooks.add("before_run", fn)

    def after_run(self, fn: F) -> F:
        """``@tasks.after_run``: call ``fn(record, outcome)`` once a run's outcome is stored."""
        return self.hooks.add("after_run", fn)

    def on_failure(self, fn: F) -> F:
        """``@tasks.on_failure``: call ``fn(record, outcome)`` when a task failed for good."""
        return self.hooks.add("on_failure", fn)
