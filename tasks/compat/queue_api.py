"""``TaskQueue``: the ``queue.Queue``-with-worker-threads pattern, backed by durable tasks.

Every ``put`` stores a task for the queue's handler, so items survive restarts
and show up in the task API like any other task. The bound counts this
handler's unfinished tasks (queued or running) in the store, and a full queue
raises the standard library's :class:`queue.Full`.
"""

from __future__ import annotations

import asyncio
import os
import queue
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from tasks.compat.bridge import run_blocking
from tasks.errors import ConfigurationError, QueueFullError
from tasks.events import TaskEvent
from tasks.handle import TaskHandle, wait_for_change
from tasks.model import State
from tasks.runtime import Runtime

if TYPE_CHECKING:
    from quart import Quart

    from tasks.extension import Tasks
    from tasks.registry import Task

F = TypeVar("F", bound=Callable[..., Any])

_POLL = 0.25
"""Seconds between store reads while waiting for room (other processes finish tasks too)."""
_FINISHED = frozenset({"succeeded", "failed", "cancelled"})


class TaskQueue:
    """A bounded queue whose items are handled by one function, as durable tasks.

    ``tq = TaskQueue(tasks)``, then ``@tq.handler`` on a function taking one
    item (sync or async; it runs like any task, with the app context), then
    ``tq.init_app(app)`` after ``tasks.init_app(app)``. Blocking calls
    (``put``, ``qsize``, ``join``) are for plain ``def`` views and threads;
    ``async def`` code awaits ``aput``, ``aqsize`` and ``ajoin``.

    ``maxsize`` (argument, else ``MAX_QUEUE_SIZE`` from the app config; 0 means
    unbounded) limits this handler's unfinished tasks. The check is exact
    within a process and approximate across processes sharing one store.
    ``**task_options`` go to ``tasks.task`` (``max_attempts``, ``timeout``...).
    """

    def __init__(
        self,
        tasks: Tasks,
        handler: Callable[..., Any] | None = None,
        *,
        maxsize: int | None = None,
        name: str | None = None,
        **task_options: Any,
    ) -> None:
        if maxsize is not None and maxsize < 0:
            raise ValueError("maxsize must not be negative")
        self.tasks = tasks
        self.maxsize = maxsize or 0
        self._explicit_maxsize = maxsize is not None
        self._name = name
        self._task_options = task_options
        self._task: Task[..., Any] | None = None
        self._waiters: set[asyncio.Event] = set()
        self._locks: weakref.WeakKeyDictionary[Runtime, asyncio.Lock] = weakref.WeakKeyDictionary()
        tasks.add_listener(self._on_event)
        if handler is not None:
            self.handler(handler)

    def handler(self, fn: F) -> F:
        """Register ``fn(item)`` as the task that handles this queue's items."""
        if self._task is not None:
            raise ValueError(f"this queue already has a handler ({self._task.name})")
        self._task = self.tasks.task(name=self._name, **self._task_options)(fn)
        return fn

    @property
    def task(self) -> Task[..., Any]:
        """The registered handler task."""
        if self._task is None:
            raise ConfigurationError("this TaskQueue has no handler; decorate one with @handler")
        return self._task

    def init_app(self, app: Quart) -> None:
        """Read ``MAX_QUEUE_SIZE`` and ``WORKER_NUMBER`` from the app config.

        ``WORKER_NUMBER`` becomes ``TASKS_CONCURRENCY`` unless that is set in the
        app config or the environment: workers are shared by every task of the
        process, not owned by one queue.
        """
        if app.extensions.get("tasks") is not self.tasks:
            raise ConfigurationError("call tasks.init_app(app) before TaskQueue.init_app(app)")
        if not self._explicit_maxsize:
            size = int(app.config.get("MAX_QUEUE_SIZE", 0))
            if size < 0:
                raise ConfigurationError(f"MAX_QUEUE_SIZE must not be negative, got {size}")
            self.maxsize = size
        workers = app.config.get("WORKER_NUMBER")
        if (
            workers is not None
            and "TASKS_CONCURRENCY" not in app.config
            and "TASKS_CONCURRENCY" not in os.environ
        ):
            app.config["TASKS_CONCURRENCY"] = int(workers)
        app.extensions.setdefault("task_queues", []).append(self)

    # -- async API -----------------------------------------------------------

    async def aput(
        self, item: Any, block: bool = True, timeout: float | None = None
    ) -> TaskHandle[Any]:
        """Store ``item`` for the handler; return the task's handle.

        Like :meth:`queue.Queue.put`: when full, wait for room (forever, or up to
        ``timeout`` seconds), or with ``block=False`` raise :class:`queue.Full`
        at once. The task backlog bound ``TASKS_MAX_QUEUED`` counts as full too.
        """
        if timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        call = self.task.call(item)
        if self.tasks.test_mode is not None:  # tests: no store, so no bound to wait for
            return await self.tasks.enqueue_call(call)
        rt = self.tasks.runtime
        deadline = None
        if not block:
            deadline = time.monotonic()
        elif timeout is not None:
            deadline = time.monotonic() + timeout
        with self._watch() as changed:
            while True:
                changed.clear()
                async with self._lock(rt):
                    if not self.maxsize or await self._unfinished(rt) < self.maxsize:
                        try:
                            return await self.tasks.enqueue_call(call)
                        except QueueFullError:
                            pass
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise queue.Full
                await wait_for_change(changed, _POLL if left is None else min(_POLL, left))

    async def aqsize(self) -> int:
        """How many of this handler's tasks are queued or running (in every process)."""
        return await self._unfinished(self.tasks.runtime)

    async def ajoin(self, timeout: float | None = None) -> None:
        """Wait until none of this handler's tasks is queued or running."""
        async with asyncio.timeout(timeout):
            with self._watch() as changed:
                while True:
                    changed.clear()
                    if not await self.aqsize():
                        return
                    await wait_for_change(changed, _POLL)

    # -- blocking API (plain views and threads) ------------------------------

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> TaskHandle[Any]:
        """Blocking :meth:`aput` for threads; raises :class:`queue.Full` like the stdlib."""
        return run_blocking(
            self.tasks,
            lambda: self.aput(item, block, timeout),
            call="TaskQueue.put()",
            instead="await queue.aput(item)",
        )

    def put_nowait(self, item: Any) -> TaskHandle[Any]:
        """``put(item, block=False)``: raise :class:`queue.Full` at once when full."""
        return self.put(item, block=False)

    def qsize(self) -> int:
        """Blocking :meth:`aqsize` for threads."""
        return run_blocking(
            self.tasks, self.aqsize, call="TaskQueue.qsize()", instead="await queue.aqsize()"
        )

    def empty(self) -> bool:
        """True when no task of this handler is queued or running."""
        return self.qsize() == 0

    def full(self) -> bool:
        """True when a non-blocking put would raise :class:`queue.Full`."""
        return bool(self.maxsize) and self.qsize() >= self.maxsize

    def join(self, timeout: float | None = None) -> None:
        """Blocking :meth:`ajoin` for threads."""
        run_blocking(
            self.tasks,
            lambda: self.ajoin(timeout),
            call="TaskQueue.join()",
            instead="await queue.ajoin()",
        )

    # -- internals -----------------------------------------------------------

    async def _unfinished(self, rt: Runtime) -> int:
        counts = (await rt.store.count_by_name()).get(self.task.name, {})
        return counts.get(State.QUEUED, 0) + counts.get(State.RUNNING, 0)

    def _lock(self, rt: Runtime) -> asyncio.Lock:
        lock = self._locks.get(rt)
        if lock is None:
            lock = self._locks[rt] = asyncio.Lock()
        return lock

    @contextmanager
    def _watch(self) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            yield event
        finally:
            self._waiters.discard(event)

    def _on_event(self, event: TaskEvent) -> None:
        if event.kind in _FINISHED and self._task is not None and event.name == self._task.name:
            for waiter in self._waiters:
                waiter.set()
