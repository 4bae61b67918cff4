"""Celery-style tasks: ``@celery.task``, ``.delay()``, ``.apply_async()``, ``update_state``.

The tasks are ordinary durable tasks; this module only speaks Celery's words
(state names and :class:`~tasks.compat.celery_result.AsyncResult` live in
:mod:`tasks.compat.celery_result`).

``update_state(state=..., meta=...)`` is stored in the task's progress: the
numbers ``meta["current"]`` and ``meta["total"]`` (when present) become the
progress ``current``/``total``, and the progress ``message`` holds the JSON
text ``{"state": state, "meta": meta}``. No extra column is needed, and the
task API and dashboard still show a progress bar.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import math
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from tasks.compat.bridge import run_blocking
from tasks.compat.celery_conf import CeleryConf
from tasks.compat.celery_result import (
    PROGRESS,
    READY_STATES,
    AsyncResult,
    rebuild_exception,
)
from tasks.compat.celery_retry import DEFAULT_RETRY_DELAY, CeleryRetry, retry_task
from tasks.context import current_task
from tasks.errors import InvalidArgumentsError
from tasks.events import TaskEvent
from tasks.model import ErrorInfo
from tasks.registry import EnqueueOptions, TaskCall
from tasks.serialization import dumps

if TYPE_CHECKING:
    from tasks.extension import Tasks
    from tasks.registry import ExecutorName, Task

log = logging.getLogger("tasks")
R = TypeVar("R")

SuccessHandler = Callable[[Any, str, list[Any], dict[str, Any]], Any]
"""``on_success(retval, task_id, args, kwargs)``, as Celery's ``Task.on_success``."""
FailureHandler = Callable[[BaseException, str, list[Any], dict[str, Any], str | None], Any]
"""``on_failure(exc, task_id, args, kwargs, traceback_text)``, as ``Task.on_failure``."""
MAX_RETRIES = 3
"""Celery's default ``Task.max_retries``: a task runs at most this many times plus one."""


class TaskRequest:
    """What ``self.request`` holds inside a bound task (``id`` is None outside a run)."""

    __slots__ = ("id", "retries")

    def __init__(self, task_id: str | None, retries: int) -> None:
        self.id = task_id
        self.retries = retries


class CeleryTask(Generic[R]):
    """A durable task that also answers to ``delay``/``apply_async``; made by ``@celery.task``.

    With ``bind=True`` the function receives this object first, for
    ``self.request.id`` and ``self.update_state(...)``. Calling the object runs
    the function directly. Blocking calls (``delay``, ``apply_async``) are for
    plain ``def`` views and threads; ``async def`` code awaits ``adelay`` and
    ``aapply_async``.
    """

    def __init__(self, owner: CeleryTasks, fn: Callable[..., Any], bind: bool) -> None:
        self.owner = owner
        self.fn = fn
        self.bind = bind
        self.max_retries = MAX_RETRIES
        self.default_retry_delay = DEFAULT_RETRY_DELAY
        self.task: Task[..., Any]
        self.name = ""
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<CeleryTask {self.name}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function here and now (not queued), as Celery does."""
        return self.fn(self, *args, **kwargs) if self.bind else self.fn(*args, **kwargs)

    def is_aborted(self) -> bool:
        """True once this run should stop: revoked, timed out, or the app is shutting down.

        Celery's ``AbortableTask.is_aborted()``, for every bound task: check it
        in loops and return early. On shutdown a run that saw it is requeued,
        not recorded as finished. False outside a run of this task.
        """
        try:
            context = current_task()
        except RuntimeError:
            return False
        return context.name == self.name and context.cancelled

    def retry(
        self,
        *,
        exc: BaseException | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        max_retries: int | None = None,
    ) -> CeleryRetry:
        """Celery's ``raise self.retry(exc=..., countdown=...)``: run again later, spending
        an attempt; see :mod:`tasks.compat.celery_retry`."""
        return retry_task(self, exc=exc, countdown=countdown, eta=eta, max_retries=max_retries)

    @property
    def request(self) -> TaskRequest:
        """The current run's id and retry count (``id`` None outside a run)."""
        try:
            context = current_task()
        except RuntimeError:
            return TaskRequest(None, 0)
        if context.name != self.name:
            return TaskRequest(None, 0)
        return TaskRequest(context.id, context.attempt - 1)

    def update_state(
        self, task_id: str | None = None, state: str | None = None, meta: Any = None
    ) -> None:
        """Record a custom state (default ``PROGRESS``) and its ``meta`` for pollers.

        Only the running task's own state can be set, and not an outcome state
        (``SUCCESS``, ``FAILURE``, ``REVOKED``): those follow from the return or
        the exception. ``meta`` must be JSON-serialisable.
        """
        context = current_task()
        if task_id is not None and task_id != context.id:
            raise InvalidArgumentsError("update_state can only set the running task's own state")
        state = PROGRESS if state is None else state
        if not isinstance(state, str) or not state:
            raise InvalidArgumentsError("state must be a non-empty string")
        if state in READY_STATES:
            raise InvalidArgumentsError(
                f"{state} is set by the task's outcome (return or raise), not by update_state"
            )
        message = dumps({"state": state, "meta": meta}, "update_state meta")
        current, total = 0.0, None
        if isinstance(meta, dict):
            current = _number(meta.get("current")) or 0.0
            total = _number(meta.get("total"))
        context.progress(current, total, message)

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
    ) -> AsyncResult[R]:
        """Store the task (blocking; for threads) and return its :class:`AsyncResult`.

        ``countdown`` delays by seconds, ``eta`` runs at a datetime (naive means
        UTC, as in Celery's default).
        """
        call = self._call(args, kwargs, countdown, eta, priority, queue)
        return run_blocking(
            self.owner.tasks,
            lambda: self._enqueue(call),
            call=f"{self.name}.apply_async()",
            instead="await task.aapply_async(...)",
        )

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult[R]:
        """``apply_async(args, kwargs)`` (blocking; for threads)."""
        return self.apply_async(args, kwargs)

    async def aapply_async(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
    ) -> AsyncResult[R]:
        """:meth:`apply_async` for ``async`` code."""
        return await self._enqueue(self._call(args, kwargs, countdown, eta, priority, queue))

    async def adelay(self, *args: Any, **kwargs: Any) -> AsyncResult[R]:
        """:meth:`delay` for ``async`` code."""
        return await self.aapply_async(args, kwargs)

    def _call(
        self,
        args: tuple[Any, ...] | list[Any] | None,
        kwargs: dict[str, Any] | None,
        countdown: float | None,
        eta: datetime | None,
        priority: int | None,
        queue: str | None,
    ) -> TaskCall[Any]:
        if countdown is not None and eta is not None:
            raise InvalidArgumentsError("give countdown or eta, not both")
        run_at = None
        if eta is not None:
            run_at = (eta if eta.tzinfo else eta.replace(tzinfo=UTC)).timestamp()
        call_args = tuple(args or ())
        call_kwargs = dict(kwargs or {})
        self.task.check_arguments(call_args, call_kwargs)
        options = EnqueueOptions(delay=countdown, run_at=run_at, priority=priority, queue=queue)
        return TaskCall(self.task, call_args, call_kwargs, options)

    async def _enqueue(self, call: TaskCall[Any]) -> AsyncResult[R]:
        handle = await self.owner.tasks.enqueue_call(call)
        return self.AsyncResult(handle.id)

    def AsyncResult(self, task_id: str) -> AsyncResult[R]:  # noqa: N802 (Celery's name)
        """The result of one of this task's runs, by id."""
        return AsyncResult(task_id, self.owner.tasks, self.owner.tracks_started)


class CeleryTasks:
    """Celery's task decorator and ``AsyncResult`` over a :class:`~tasks.Tasks`.

    ``celery = CeleryTasks(tasks)``, then ``@celery.task`` or
    ``@celery.task(bind=True, on_success=..., on_failure=...)``.
    ``celery.AsyncResult(task_id)`` looks a task up. ``track_started`` is
    Celery's ``task_track_started`` (default off): the default of every task's
    own ``track_started``.

    Callbacks run once per outcome, in the process that commits it (the one
    that ran the task, or for a task whose process died, the one that failed
    it), after the commit (``on_failure`` only when no retry is left). Plain
    functions run in the app's thread pool and coroutine functions on the
    loop, both in the app context. A process that dies between commit and
    callback skips it.
    """

    def __init__(
        self,
        tasks: Tasks,
        *,
        track_started: bool = False,
        task_always_eager: bool = False,
        task_eager_propagates: bool = False,
    ) -> None:
        self.tasks = tasks
        self.track_started = track_started
        self.conf = CeleryConf(tasks, task_always_eager, task_eager_propagates)
        """Celery's test settings: ``celery.conf.task_always_eager = True`` as in Celery."""
        self._track_started: dict[str, bool] = {}
        self._by_name: dict[str, CeleryTask[Any]] = {}
        self._on_success: dict[str, SuccessHandler] = {}
        self._on_failure: dict[str, FailureHandler] = {}
        self._callbacks: set[asyncio.Task[None]] = set()
        tasks.add_listener(self._on_event)

    @overload
    def task(self, fn: Callable[..., Coroutine[Any, Any, R]], /) -> CeleryTask[R]: ...

    @overload
    def task(self, fn: Callable[..., R], /) -> CeleryTask[R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        bind: bool = False,
        name: str | None = None,
        on_success: SuccessHandler | None = None,
        on_failure: FailureHandler | None = None,
        track_started: bool | None = None,
        autoretry_for: tuple[type[BaseException], ...] = (),
        dont_autoretry_for: tuple[type[BaseException], ...] = (),
        max_retries: int | None = MAX_RETRIES,
        max_attempts: int | None = None,
        executor: ExecutorName | None = None,
        default_retry_delay: float = DEFAULT_RETRY_DELAY,
        **options: Any,
    ) -> Callable[[Callable[..., Any]], CeleryTask[Any]]: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        bind: bool = False,
        name: str | None = None,
        on_success: SuccessHandler | None = None,
        on_failure: FailureHandler | None = None,
        track_started: bool | None = None,
        autoretry_for: tuple[type[BaseException], ...] = (),
        dont_autoretry_for: tuple[type[BaseException], ...] = (),
        max_retries: int | None = MAX_RETRIES,
        max_attempts: int | None = None,
        executor: ExecutorName | None = None,
        default_retry_delay: float = DEFAULT_RETRY_DELAY,
        **options: Any,
    ) -> Any:
        """Register a Celery-style task.

        As in Celery, an exception fails the task at once unless it is one of
        ``autoretry_for`` (and not of ``dont_autoretry_for``); those are retried
        up to ``max_retries`` times (Celery's default, 3). The task runs at most
        ``max_retries + 1`` times in all (or ``max_attempts``, if given): a run
        cut short by a lost worker (``kill -9``) is run again within that
        budget, as every durable task is. ``track_started`` (default: this
        object's) makes a running task read ``STARTED`` before its first
        ``update_state``. Other options (``timeout``, ``queue``, ``priority``,
        ``retry_backoff``...) go to ``tasks.task``. A bound task's
        ``raise self.retry(...)`` waits ``default_retry_delay`` (Celery's 180 s)
        unless given a ``countdown`` (:mod:`tasks.compat.celery_retry`).
        """
        if max_retries is None:
            raise ValueError("max_retries=None (retry forever) is not supported; give a number")
        if max_retries < 0:
            raise ValueError("max_retries must not be negative")

        def register(function: Callable[..., Any]) -> CeleryTask[Any]:
            celery_task: CeleryTask[Any] = CeleryTask(self, function, bind)
            celery_task.max_retries = max_retries
            celery_task.default_retry_delay = default_retry_delay
            task_name = name or f"{function.__module__}.{function.__qualname__}"
            runner = _runner(celery_task, function, bind)
            celery_task.task = self.tasks.task(
                name=task_name,
                max_attempts=max_attempts or max_retries + 1,
                retry_on=tuple(autoretry_for),
                dont_retry_on=tuple(dont_autoretry_for),
                executor=executor,
                **options,
            )(runner)
            celery_task.name = task_name
            if track_started is not None:
                self._track_started[task_name] = track_started
            self._by_name[task_name] = celery_task
            if on_success is not None:
                self._on_success[task_name] = on_success
            if on_failure is not None:
                self._on_failure[task_name] = on_failure
            return celery_task

        return register if fn is None else register(fn)

    def AsyncResult(self, task_id: str) -> AsyncResult[Any]:  # noqa: N802 (Celery's name)
        """The result of any task, by id."""
        return AsyncResult(task_id, self.tasks, self.tracks_started)

    def tracks_started(self, name: str) -> bool:
        """Whether the task called ``name`` reads ``STARTED`` before its first update."""
        return self._track_started.get(name, self.track_started)

    def _on_event(self, event: TaskEvent) -> None:
        handler: Callable[..., Any] | None = None
        if event.kind == "succeeded":
            handler = self._on_success.get(event.name)
        elif event.kind == "failed":
            handler = self._on_failure.get(event.name)
        if handler is None:
            return
        callback = asyncio.get_running_loop().create_task(
            self._fire(event, handler), name=f"tasks-callback-{event.task_id}"
        )
        self._callbacks.add(callback)
        callback.add_done_callback(self._callbacks.discard)

    async def _fire(self, event: TaskEvent, handler: Callable[..., Any]) -> None:
        try:
            record = await self.tasks.get(event.task_id)
            if event.kind == "succeeded":
                arguments: tuple[Any, ...] = (record.result, record.id, record.args, record.kwargs)
            else:
                error = record.error or ErrorInfo("Exception", "")
                arguments = (
                    rebuild_exception(error),
                    record.id,
                    record.args,
                    record.kwargs,
                    error.traceback,
                )
            rt = self.tasks.runtime
            async with rt.app.app_context():
                if inspect.iscoroutinefunction(handler):
                    await handler(*arguments)
                else:
                    call = functools.partial(contextvars.copy_context().run, handler, *arguments)
                    await rt.loop.run_in_executor(rt.executors.threads, call)
        except Exception:
            log.exception("the %s callback of task %s failed", event.kind, event.task_id)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _runner(celery_task: CeleryTask[Any], fn: Callable[..., Any], bind: bool) -> Callable[..., Any]:
    """The function registered with the engine: ``fn`` with ``self`` supplied when bound."""
    prefix = (celery_task,) if bind else ()
    runner: Callable[..., Any]
    if inspect.iscoroutinefunction(fn):

        async def run_async(*args: Any, **kwargs: Any) -> Any:
            return await fn(*prefix, *args, **kwargs)

        runner = run_async
    else:

        def run(*args: Any, **kwargs: Any) -> Any:
            return fn(*prefix, *args, **kwargs)

        runner = run
    signature = inspect.signature(fn)
    if bind:
        parameters = list(signature.parameters.values())
        if not parameters:
            raise TypeError(f"{fn.__qualname__} is bound (bind=True) but takes no self argument")
        signature = signature.replace(parameters=parameters[1:])
    runner.__dict__["__signature__"] = signature
    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(runner, attribute, getattr(fn, attribute, None))
    return runner
