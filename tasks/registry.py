"""Registered tasks: the ``@tasks.task`` decorator's product and its options."""

from __future__ import annotations

import builtins
import inspect
import math
import random
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    Literal,
    ParamSpec,
    Protocol,
    TypeVar,
    overload,
)

from tasks.arguments import ArgumentBounds
from tasks.errors import InvalidArgumentsError, WorkerLostError
from tasks.limits import TaskLimits
from tasks.serialization import check_text

if TYPE_CHECKING:
    from tasks.handle import TaskHandle
    from tasks.workflows import Then

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
A = TypeVar("A")
Q = ParamSpec("Q")
ExecutorName = Literal["async", "thread", "process"]
ExceptionTypes = tuple[type[BaseException], ...]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The range of the stores' integer columns (priority, attempts)."""
NO_TASK_LIMITS = TaskLimits()
DEFAULT_MAX_SNOOZES = 100
"""How often a task may put itself back with :class:`tasks.Retry` unless it says otherwise."""


class Enqueuer(Protocol):
    """What a :class:`Task` needs from the extension that owns it."""

    async def enqueue_call(self, call: TaskCall[Any]) -> TaskHandle[Any]: ...


@dataclass(frozen=True, slots=True)
class EnqueueOptions:
    """Per-enqueue settings; None means "use the task's default"."""

    delay: float | None = None
    run_at: float | None = None
    priority: int | None = None
    queue: str | None = None
    max_attempts: int | None = None
    idempotency_key: str | None = None
    timeout: float | None = None
    """Seconds a run of this task may take, stored with it (over the task's ``timeout``)."""
    concurrency_key: str | None = None
    """The key this call's concurrency limit counts under (over the task's key function)."""
    rate_key: str | None = None
    """The key this call's rate limit counts under (over the task's key function)."""
    unique_key: str | None = None
    """At most one queued or running task of this task per key (see :mod:`tasks.limits`)."""
    depends_on: tuple[str, ...] = ()
    """Ids of tasks that must succeed before this one starts (see :mod:`tasks.workflows`)."""

    def __post_init__(self) -> None:
        """Refuse values no backend could store, before they reach a shared transaction."""
        for name in ("delay", "run_at", "timeout"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise InvalidArgumentsError(f"{name} must be a finite number, got {value}")
        if self.delay is not None and self.delay < 0:
            raise InvalidArgumentsError(f"delay must not be negative, got {self.delay}")
        if self.timeout is not None and self.timeout <= 0:
            raise InvalidArgumentsError(f"timeout must be positive, got {self.timeout}")
        for name in ("priority", "max_attempts"):
            value = getattr(self, name)
            if value is not None and not INT64_MIN <= value <= INT64_MAX:
                raise InvalidArgumentsError(f"{name} must fit in 64 bits, got {value}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise InvalidArgumentsError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for name in ("idempotency_key", "queue", "concurrency_key", "rate_key", "unique_key"):
            value = getattr(self, name)
            if value is not None:
                if not value:
                    raise InvalidArgumentsError(f"{name} must not be empty")
                check_text(value, name)


@dataclass(frozen=True, slots=True)
class TaskCall(Generic[R_co]):
    """A task with arguments already checked against its signature, ready to enqueue."""

    task: Task[..., R_co]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: EnqueueOptions = field(default_factory=EnqueueOptions)


class Task(Generic[P, R]):
    """A registered task. Call it to run the function directly; enqueue it to run later.

    ``await task.enqueue(*args, **kwargs)`` stores the task and returns a
    :class:`~tasks.handle.TaskHandle` once the row is committed. Arguments are
    checked against the function's signature (by mypy, and at run time) and must
    be JSON-serialisable.
    """

    def __init__(
        self,
        owner: Enqueuer,
        fn: Callable[..., Any],
        *,
        name: str,
        executor: ExecutorName,
        max_attempts: int | None,
        timeout: float | None,
        queue: str,
        priority: int,
        http: bool,
        retry_backoff: float,
        retry_backoff_max: float,
        retry_on: ExceptionTypes | None = None,
        dont_retry_on: ExceptionTypes = (),
        max_snoozes: int = DEFAULT_MAX_SNOOZES,
        limits: TaskLimits = NO_TASK_LIMITS,
    ) -> None:
        if max_snoozes < 0:
            raise ValueError("max_snoozes must not be negative")
        self.fn = fn
        self.name = name
        self.executor: ExecutorName = executor
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.queue = queue
        self.priority = priority
        self.http = http
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self.retry_on = None if retry_on is None else _exception_types(retry_on, "retry_on")
        self.dont_retry_on = _exception_types(dont_retry_on, "dont_retry_on")
        self.max_snoozes = max_snoozes
        self.limits = limits
        self.signature = inspect.signature(fn)
        self.bounds = ArgumentBounds(fn, self.signature)
        self._owner = owner
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<Task {self.name} executor={self.executor}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Run the function here and now, outside the queue."""
        return self.fn(*args, **kwargs)

    def call(self, *args: P.args, **kwargs: P.kwargs) -> TaskCall[R]:
        """Bind arguments without enqueueing (for :meth:`Tasks.enqueue_many`)."""
        self.check_arguments(args, kwargs)
        return TaskCall(self, args, kwargs)

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[R]:
        """Store the task for a worker; returns after the row is committed."""
        return await self._owner.enqueue_call(self.call(*args, **kwargs))

    def then(self: Task[Concatenate[A, Q], R], *args: Q.args, **kwargs: Q.kwargs) -> Then[A, R]:
        """A workflow step that receives what the steps before it gave as its first
        argument, then ``args`` and ``kwargs`` (see :mod:`tasks.workflows`)."""
        from tasks.workflows import Then, check_then

        check_then(self, args, kwargs)
        return Then(self, args, kwargs)

    def options(
        self,
        *,
        delay: float | None = None,
        run_at: float | None = None,
        priority: int | None = None,
        queue: str | None = None,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
        concurrency_key: str | None = None,
        rate_key: str | None = None,
        unique_key: str | None = None,
        depends_on: Iterable[TaskHandle[Any] | str] = (),
    ) -> ConfiguredTask[P, R]:
        """The same task with per-enqueue settings: ``await t.options(delay=5).enqueue(x)``.

        ``timeout`` (seconds) is stored with the task: whichever worker runs it
        applies it instead of the registered ``timeout``. ``concurrency_key``
        and ``rate_key`` name the key this call's limits count under, and
        ``unique_key`` makes the call unique while active (see :mod:`tasks.limits`).
        ``depends_on`` (task handles or ids) makes it wait until every one of
        them succeeded; if one fails or is cancelled, it is cancelled.
        """
        options = EnqueueOptions(
            delay,
            run_at,
            priority,
            queue,
            max_attempts,
            idempotency_key,
            timeout,
            concurrency_key,
            rate_key,
            unique_key,
            tuple(d if isinstance(d, str) else d.id for d in depends_on),
        )
        return ConfiguredTask(self, options)

    def check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise :class:`InvalidArgumentsError` unless the arguments bind to the signature
        and keep within the bounds of its ``Annotated`` parameters (see :mod:`tasks.arguments`).
        """
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgumentsError(f"arguments do not fit task {self.name}: {exc}") from exc
        self.bounds.check(self.name, bound.arguments)

    def retries(self, error: BaseException | str) -> bool:
        """Whether a run that raised ``error`` may be retried (while attempts remain).

        ``dont_retry_on`` wins over ``retry_on``; ``retry_on=None`` retries every
        exception. A :class:`~tasks.errors.WorkerLostError` (the pool process
        died) is retried unless ``dont_retry_on`` names it: like a lost lease,
        it says nothing about the task. For a process task only the exception's
        class name crosses back (a ``str``): a builtin name is matched with its
        base classes, any other name against the classes' names only.
        """
        if _matches(error, self.dont_retry_on):
            return False
        if self.retry_on is None or isinstance(error, WorkerLostError):
            return True
        return _matches(error, self.retry_on)

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt``: exponential, capped, with jitter."""
        ceiling = min(self.retry_backoff_max, self.retry_backoff * 2.0 ** max(attempt - 1, 0))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class ConfiguredTask(Generic[P, R]):
    """A task plus :class:`EnqueueOptions`; made by :meth:`Task.options`."""

    def __init__(self, task: Task[P, R], options: EnqueueOptions) -> None:
        self.task = task
        self.options = options

    def call(self, *args: P.args, **kwargs: P.kwargs) -> TaskCall[R]:
        """Bind arguments, keeping the options."""
        self.task.check_arguments(args, kwargs)
        return TaskCall(self.task, args, kwargs, self.options)

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[R]:
        """Store the task with these options; see :meth:`Task.enqueue`."""
        return await self.task._owner.enqueue_call(self.call(*args, **kwargs))

    def then(
        self: ConfiguredTask[Concatenate[A, Q], R], *args: Q.args, **kwargs: Q.kwargs
    ) -> Then[A, R]:
        """A workflow step with these options; see :meth:`Task.then`."""
        from tasks.workflows import Then, check_then

        check_then(self.task, args, kwargs)
        return Then(self.task, args, kwargs, self.options)


class TaskDecorator(Protocol):
    """What ``@tasks.task(...)`` with options returns."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


def executor_for(fn: Callable[..., Any], executor: ExecutorName | None) -> ExecutorName:
    """The executor a function runs on: coroutines on the loop, plain functions on threads."""
    is_async = inspect.iscoroutinefunction(fn)
    if executor is None:
        return "async" if is_async else "thread"
    if executor == "thread" and is_async:
        raise ValueError(f"{fn.__qualname__} is a coroutine function; it cannot run on a thread")
    if executor == "async" and not is_async:
        raise ValueError(f"{fn.__qualname__} is not a coroutine function; use a thread executor")
    return executor


def _exception_types(value: object, label: str) -> ExceptionTypes:
    if not isinstance(value, tuple) or not all(
        isinstance(kind, type) and issubclass(kind, BaseException) for kind in value
    ):
        raise ValueError(f"{label} must be a tuple of exception classes, got {value!r}")
    return value


def _matches(error: BaseException | str, kinds: ExceptionTypes) -> bool:
    if not isinstance(error, str):
        return isinstance(error, kinds)
    builtin = getattr(builtins, error, None)
    if isinstance(builtin, type) and issubclass(builtin, BaseException):
        return issubclass(builtin, kinds)
    return any(error in (kind.__name__, kind.__qualname__) for kind in kinds)
