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
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, overload

from tasks.compat.celery_conf import CeleryConf
from tasks.compat.celery_result import (
    AsyncResult,
    rebuild_exception,
)
from tasks.compat.celery_retry import DEFAULT_RETRY_DELAY, MAX_RETRIES
from tasks.compat.celery_task import CeleryTask
from tasks.errors import UnknownTaskError
from tasks.events import TaskEvent
from tasks.model import ErrorInfo

if TYPE_CHECKING:
    from tasks.compat.celery_canvas import Signature
    from tasks.extension import Tasks
    from tasks.registry import ExecutorName

log = logging.getLogger("tasks")
R = TypeVar("R")

SuccessHandler = Callable[[Any, str, list[Any], dict[str, Any]], Any]
"""``on_success(retval, task_id, args, kwargs)``, as Celery's ``Task.on_success``."""
FailureHandler = Callable[[BaseException, str, list[Any], dict[str, Any], str | None], Any]
"""``on_failure(exc, task_id, args, kwargs, traceback_text)``, as ``Task.on_failure``."""


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

    def signature(self, name: str, *args: Any, **kwargs: Any) -> Signature:
        """Celery's ``app.signature("task.name", args, kwargs, **options)``."""
        if name not in self._by_name:
            raise UnknownTaskError(f"no Celery-style task is registered as {name!r}")
        return self._by_name[name].signature(*args, **kwargs)

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
