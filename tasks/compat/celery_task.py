"""Celery-style task objects: what ``@celery.task`` returns, and ``self.request``.

A :class:`CeleryTask` wraps one durable task registered by
:class:`~tasks.compat.celery_api.CeleryTasks`: calling it runs the function
here; ``delay``/``apply_async`` enqueue it and return an
:class:`~tasks.compat.celery_result.AsyncResult`; inside a bound task
``update_state`` stores Celery's state and meta in the task's progress (see
:mod:`tasks.compat.celery_api`) and ``request`` names the current run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tasks.compat.bridge import run_blocking
from tasks.compat.celery_result import (
    PROGRESS,
    READY_STATES,
    AsyncResult,
)
from tasks.compat.celery_retry import DEFAULT_RETRY_DELAY, MAX_RETRIES, CeleryRetry, retry_task
from tasks.context import current_task
from tasks.errors import InvalidArgumentsError
from tasks.registry import EnqueueOptions, TaskCall
from tasks.serialization import dumps

if TYPE_CHECKING:
    from tasks.compat.celery_api import CeleryTasks
    from tasks.compat.celery_canvas import Canvas, Signature
    from tasks.registry import Task

R = TypeVar("R")


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

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """Celery's partial signature: in a chain it receives the previous result first."""
        return self.signature(args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """Celery's immutable signature: it runs with exactly these arguments."""
        return self.signature(args, kwargs, immutable=True)

    def signature(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        immutable: bool = False,
        **options: Any,
    ) -> Signature:
        """A :class:`~tasks.compat.celery_canvas.Signature` of this task (see that module)."""
        from tasks.compat.celery_canvas import Signature

        return Signature(self, args or (), kwargs, options, immutable)

    subtask = signature

    def map(self, *_: Any) -> None:
        """Not supported: Celery's ``map``/``starmap``/``chunks`` run many calls in one task."""
        from tasks.compat.celery_canvas import CanvasError

        raise CanvasError(
            f"{self.name}.map/starmap/chunks are not supported: use"
            f" group({self.name}.s(item) for item in items), one task per item"
        )

    starmap = chunks = map

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        countdown: float | None = None,
        eta: datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        link: Canvas | list[Canvas] | None = None,
        link_error: Canvas | list[Canvas] | None = None,
    ) -> AsyncResult[R]:
        """Store the task (blocking; for threads) and return its :class:`AsyncResult`.

        ``countdown`` delays by seconds, ``eta`` runs at a datetime (naive means
        UTC, as in Celery's default). ``link``/``link_error`` add callbacks (see
        :mod:`tasks.compat.celery_canvas`): the task and they are one workflow.
        """
        if link is not None or link_error is not None:
            options = _options(countdown, eta, priority, queue)
            sig = self.signature(args, kwargs, **options)
            result: AsyncResult[R] = sig.apply_async(link=link, link_error=link_error)
            return result
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
        link: Canvas | list[Canvas] | None = None,
        link_error: Canvas | list[Canvas] | None = None,
    ) -> AsyncResult[R]:
        """:meth:`apply_async` for ``async`` code."""
        if link is not None or link_error is not None:
            sig = self.signature(args, kwargs, **_options(countdown, eta, priority, queue))
            result: AsyncResult[R] = await sig.aapply_async(link=link, link_error=link_error)
            return result
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


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _options(
    countdown: float | None, eta: datetime | None, priority: int | None, queue: str | None
) -> dict[str, Any]:
    given = {"countdown": countdown, "eta": eta, "priority": priority, "queue": queue}
    return {key: value for key, value in given.items() if value is not None}
