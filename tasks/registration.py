"""Turning decorated functions into registered tasks, and finding them by name.

:meth:`Tasks.task <tasks.Tasks.task>` keeps its typing overloads; the work is
here. Options are checked once, when the decorator is made (a bad
``max_attempts`` fails at import time, not at the first enqueue); a task name
is registered at most once per :class:`~tasks.Tasks`; the default name is the
function's ``module.qualname``, which worker processes resolve the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tasks.errors import UnknownTaskError
from tasks.limits import TaskLimits
from tasks.registry import Enqueuer, ExecutorName, Task, executor_for

Registry = dict[str, Task[..., Any]]
"""Registered tasks by name, as held by one :class:`~tasks.Tasks`."""


def task_decorator(
    owner: Enqueuer,
    registry: Registry,
    *,
    name: str | None,
    executor: ExecutorName | None,
    max_attempts: int | None,
    timeout: float | None,
    limits: Mapping[str, Any] | None = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], Task[..., Any]]:
    """A function that registers its argument in ``registry`` as a task of ``owner``.

    ``options`` are the remaining keyword arguments of :class:`~tasks.Task`
    (queue, priority, http, retry settings); ``limits`` the keyword
    arguments of :meth:`TaskLimits.build <tasks.limits.TaskLimits.build>`.
    Raises ValueError for an impossible option now, and for a name already
    taken when applied.
    """
    task_limits = TaskLimits.build(**(limits or {}))
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if timeout is not None and timeout <= 0:
        raise ValueError("timeout must be positive")

    def register(function: Callable[..., Any]) -> Task[..., Any]:
        task_name = name or f"{function.__module__}.{function.__qualname__}"
        if task_name in registry:
            raise ValueError(f"a task named {task_name!r} is already registered")
        task: Task[..., Any] = Task(
            owner,
            function,
            name=task_name,
            executor=executor_for(function, executor),
            max_attempts=max_attempts,
            timeout=timeout,
            limits=task_limits,
            **options,
        )
        registry[task_name] = task
        return task

    return register


def lookup(registry: Registry, name: str) -> Task[..., Any]:
    """The task registered as ``name``; raises UnknownTaskError."""
    try:
        return registry[name]
    except KeyError:
        raise UnknownTaskError(f"no task named {name!r} is registered") from None
