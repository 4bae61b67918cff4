"""The Quart extension: a facade over registration, lifespan, enqueueing and control.

Each concern lives in its own module (:mod:`tasks.registration`,
:mod:`tasks.lifespan`, :mod:`tasks.enqueueing`, :mod:`tasks.control`); the
methods here keep the public names, signatures and docstrings and delegate.
"""

from __future__ import annotations

import asyncio
import builtins
import weakref
from collections.abc import Callable, Coroutine, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar, overload

from quart.signals import got_serving_exception

from tasks import control, enqueueing, logs, workflow_handle
from tasks.cli import cli
from tasks.config import TasksConfig
from tasks.errors import NotAcceptingError
from tasks.events import EventBus, Listener
from tasks.handle import TaskHandle
from tasks.hooks import HookMethods, Hooks
from tasks.lifespan import Lifespan
from tasks.limits import KeyFunction
from tasks.model import State, TaskRecord
from tasks.offline import RunningTasks
from tasks.registration import lookup, task_decorator
from tasks.registry import (
    DEFAULT_MAX_SNOOZES,
    EnqueueOptions,
    ExceptionTypes,
    ExecutorName,
    P,
    R,
    Task,
    TaskCall,
    TaskDecorator,
)
from tasks.runtime import Runtime
from tasks.scheduler import Schedules
from tasks.scheduling import ScheduleMethods
from tasks.store import Page, Store
from tasks.summary import SummaryPage, TaskSummary
from tasks.waiting import Waiting, why_waiting
from tasks.workflows import WorkflowMethods

if TYPE_CHECKING:
    from quart import Quart

    from tasks.testing import TestMode

T = TypeVar("T")
_LIVE: weakref.WeakSet[Tasks] = weakref.WeakSet()


class Tasks(ScheduleMethods, HookMethods, WorkflowMethods):
    """Durable background tasks for a Quart app.

    Register tasks with :meth:`task`, bind to an app with :meth:`init_app`
    (or ``Tasks(app)``). The store, pools and workers start with the app's
    serving lifespan and drain when it stops. Settings come from keyword
    arguments, then ``TASKS_*`` app config keys, then the environment (see
    :class:`~tasks.config.TasksConfig`).
    """

    def __init__(self, app: Quart | None = None, **settings: Any) -> None:
        self.registry: dict[str, Task[..., Any]] = {}
        self._settings = settings
        self._bus = EventBus()
        self._lifespan = Lifespan(self, self._bus)
        self.app: Quart | None = None
        self.schedules = Schedules(self.registry)
        """The periodic schedules declared with :meth:`periodic` or :meth:`schedule`."""
        self.test_mode: TestMode | None = None
        """Set by :func:`tasks.testing.eager` / :func:`tasks.testing.capture` in tests."""
        self.hooks = Hooks()
        """Lifecycle hooks (:mod:`tasks.hooks`); also ``@tasks.on_enqueue`` and the like."""
        logs.install()  # task fields on log records made inside tasks (tasks.logs)
        _LIVE.add(self)
        if app is not None:
            self.init_app(app)

    @staticmethod
    def live() -> builtins.list[Tasks]:
        """Every ``Tasks`` object that exists in this process (for test fixtures)."""
        return builtins.list(_LIVE)

    # -- registration --------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Task[P, R]: ...

    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        executor: ExecutorName | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        queue: str = "default",
        priority: int = 0,
        http: bool = False,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 300.0,
        retry_on: ExceptionTypes | None = None,
        dont_retry_on: ExceptionTypes = (),
        max_snoozes: int = DEFAULT_MAX_SNOOZES,
        concurrency: int | None = None,
        concurrency_key: KeyFunction | None = None,
        rate_limit: str | int | None = None,
        rate_key: KeyFunction | None = None,
        unique: bool = False,
        unique_key: KeyFunction | None = None,
    ) -> TaskDecorator: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        executor: ExecutorName | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        queue: str = "default",
        priority: int = 0,
        http: bool = False,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 300.0,
        retry_on: ExceptionTypes | None = None,
        dont_retry_on: ExceptionTypes = (),
        max_snoozes: int = DEFAULT_MAX_SNOOZES,
        concurrency: int | None = None,
        concurrency_key: KeyFunction | None = None,
        rate_limit: str | int | None = None,
        rate_key: KeyFunction | None = None,
        unique: bool = False,
        unique_key: KeyFunction | None = None,
    ) -> Any:
        """Register a function as a task (``@tasks.task`` or ``@tasks.task(...)``).

        Coroutine functions run on the app's event loop, plain functions in the
        app's thread pool, ``executor="process"`` in its process pool.
        ``max_attempts`` defaults to ``TASKS_DEFAULT_MAX_ATTEMPTS``; failed runs
        are retried after an exponential backoff (``retry_backoff`` doubled per
        attempt, capped at ``retry_backoff_max``, with jitter). ``retry_on``
        names the exceptions that are retried (default: every exception),
        ``dont_retry_on`` those that fail the task at once; a lost worker is
        always run again while attempts remain. ``timeout`` is in seconds.
        ``max_snoozes`` bounds how often a task may put itself back with
        :class:`tasks.Retry` (see :mod:`tasks.retrying`).
        Only tasks registered with ``http=True`` can be started over the HTTP
        API (``POST /tasks``); every task can be enqueued from Python.
        Flow control, enforced across every process sharing the store (see
        :mod:`tasks.limits`): ``concurrency`` tasks running at once (per value
        of ``concurrency_key(*args, **kwargs)`` when given), ``rate_limit``
        starts per period (``"10/s"``; per ``rate_key`` value when given), and
        ``unique`` (or ``unique_key``): at most one queued or running task per
        arguments (or key); enqueueing a duplicate returns the existing task.
        """
        register = task_decorator(
            self,
            self.registry,
            name=name,
            executor=executor,
            max_attempts=max_attempts,
            timeout=timeout,
            queue=queue,
            priority=priority,
            http=http,
            retry_backoff=retry_backoff,
            retry_backoff_max=retry_backoff_max,
            retry_on=retry_on,
            dont_retry_on=dont_retry_on,
            max_snoozes=max_snoozes,
            limits={
                "concurrency": concurrency,
                "concurrency_key": concurrency_key,
                "rate_limit": rate_limit,
                "rate_key": rate_key,
                "unique": unique,
                "unique_key": unique_key,
            },
        )
        return register if fn is None else register(fn)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event)`` for each task event committed by this process."""
        self._bus.add_listener(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling a listener added with :meth:`add_listener` (no error if absent)."""
        self._bus.remove_listener(listener)

    def watch(self, task_id: str) -> AbstractContextManager[asyncio.Event]:
        """An event set whenever ``task_id`` changes in this process (clear it after use).

        Changes made by other processes do not set it: re-read the record now and
        then as well.
        """
        return self._bus.watch(task_id)

    # -- app binding and lifespan (tasks.lifespan) ----------------------------

    def init_app(self, app: Quart) -> None:
        """Bind to ``app``: start with its serving lifespan, drain when it stops; add the
        ``quart tasks`` commands."""
        self.app = app
        app.extensions["tasks"] = self
        app.before_serving(self.startup)
        app.after_serving(self.shutdown)
        got_serving_exception.connect(self._lifespan.on_serving_exception, app)
        app.cli.add_command(cli)  # `quart tasks ...`: the commands of `python -m tasks`

    def running(self, app: Quart | None = None) -> RunningTasks:
        """``with``/``async with tasks.running():`` enqueue outside a served app.

        For CLI commands, scripts and tests; see :mod:`tasks.offline`.
        """
        return RunningTasks(self, app)

    @property
    def runtime(self) -> Runtime:
        """The running system; raises NotAcceptingError when the app is not serving."""
        if self._lifespan.runtime is None:
            raise NotAcceptingError(
                "the task system is not running (the app is not serving); outside a served"
                " app (a CLI command, a script), enqueue inside `with tasks.running():`"
            )
        return self._lifespan.runtime

    @property
    def config(self) -> TasksConfig:
        """Resolved settings of the running system."""
        return self.runtime.config

    @property
    def store(self) -> Store:
        """The task store of the running system."""
        return self.runtime.store

    @property
    def accepting(self) -> bool:
        """True while enqueues are accepted (serving, not draining)."""
        rt = self._lifespan.runtime
        return rt is not None and rt.accepting

    async def startup(self, *, enqueue_only: bool = False) -> None:
        """Open the store, migrate, recover expired leases, start pools and workers.

        ``enqueue_only`` starts no workers whatever ``TASKS_WORKERS`` says (see
        :meth:`running`).

        If the store cannot be opened or written, one critical log line names
        the database and the cause, and ``SystemExit(1)`` ends the serving
        process without a traceback (there is nothing useful it could serve).
        """
        await self._lifespan.startup(self._settings, enqueue_only=enqueue_only)

    async def shutdown(self) -> None:
        """Refuse new enqueues, drain the workers, close pools and store.

        Calls made while a shutdown is under way wait for that one to finish.
        """
        await self._lifespan.shutdown()

    # -- enqueueing (tasks.enqueueing) ---------------------------------------

    def get_task(self, name: str) -> Task[..., Any]:
        """The registered task called ``name``; raises UnknownTaskError."""
        return lookup(self.registry, name)

    async def enqueue(
        self, name: str, /, *args: Any, _options: EnqueueOptions | None = None, **kwargs: Any
    ) -> TaskHandle[Any]:
        """Enqueue a registered task by name (untyped; prefer ``some_task.enqueue``)."""
        task = self.get_task(name)
        task.check_arguments(args, kwargs)
        return await self.enqueue_call(TaskCall(task, args, kwargs, _options or EnqueueOptions()))

    async def enqueue_call(self, call: TaskCall[T]) -> TaskHandle[T]:
        """Enqueue one prepared call; returns after the row is committed."""
        if call.options.depends_on:
            return await workflow_handle.enqueue_dependent(self, call)
        [handle] = await self.enqueue_many([call])
        return handle

    async def enqueue_with_record(self, call: TaskCall[T]) -> tuple[TaskHandle[T], TaskRecord]:
        """Enqueue one call; also return the task's record as of the commit.

        A new task's record is built from the row just inserted (no read back);
        when an idempotency key matched an existing task, that one is read.
        """
        if self.test_mode is not None:
            [handle] = await self.test_mode.enqueue([call])
            return handle, self.test_mode.get(handle.id)
        return await enqueueing.enqueue_with_record(self, call)

    async def enqueue_many(self, calls: Iterable[TaskCall[Any]]) -> list[TaskHandle[Any]]:
        """Enqueue several calls in one transaction; all are stored or none is."""
        if self.test_mode is not None:
            return await self.test_mode.enqueue(calls)
        return [handle for _, handle in await enqueueing.enqueue_rows(self, calls)]

    async def enqueue_in(self, connection: Any, *calls: TaskCall[Any]) -> list[TaskHandle[Any]]:
        """Enqueue inside the caller's own database transaction (transactional enqueue).

        ``connection`` is the caller's open connection to the task database (an
        aiosqlite connection to the same SQLite file, an asyncpg connection to
        the same PostgreSQL database, or an SQLAlchemy ``AsyncSession`` /
        ``AsyncConnection`` on either, see :mod:`tasks.orm`) with a transaction
        in progress: the tasks are committed or rolled back together with the
        caller's own writes. Workers see them once the caller commits.
        """
        if self.test_mode is not None:  # the caller's transaction is not involved
            return await self.test_mode.enqueue(calls)
        return await enqueueing.enqueue_in(self, connection, calls)

    # -- inspection and control (tasks.control) ------------------------------

    async def get(self, task_id: str) -> TaskRecord:
        """The stored record of a task; raises TaskNotFoundError."""
        if self.test_mode is not None and self.test_mode.knows(task_id):
            return self.test_mode.get(task_id)
        return await control.get(self.runtime.store, task_id)

    async def why_waiting(self, record: TaskRecord) -> Waiting | None:
        """Why a queued task is not running yet; None for other states (see
        :mod:`tasks.waiting`)."""
        if self.test_mode is not None and self.test_mode.knows(record.id):
            return None
        rt = self.runtime
        return await why_waiting(rt.store, record, rt.config.queue_concurrency)

    async def list(
        self,
        *,
        state: State | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A page of tasks, newest first (see :meth:`Store.list`)."""
        store = self.runtime.store
        return await control.list_page(store, state=state, name=name, limit=limit, cursor=cursor)

    async def list_summaries(
        self,
        *,
        state: State | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SummaryPage:
        """A page of task summaries, newest first: :meth:`list` without the payloads.

        Each :class:`~tasks.summary.TaskSummary` carries the size and first
        characters of the task's args, kwargs and result, read as such from the
        store; its memory does not grow with what the tasks carry.
        """
        store = self.runtime.store
        return await control.list_summaries(
            store, state=state, name=name, limit=limit, cursor=cursor
        )

    async def get_summary(self, task_id: str) -> TaskSummary:
        """The summary of one task; raises TaskNotFoundError."""
        return await control.get_summary(self.runtime.store, task_id)

    async def wait(self, task_id: str, timeout: float | None = None) -> TaskRecord:
        """Wait until a task has finished; see :meth:`TaskHandle.wait`."""
        if self.test_mode is not None and self.test_mode.knows(task_id):
            return await self.test_mode.wait(task_id)
        return await control.wait(self, task_id, timeout)

    async def cancel(self, task_id: str) -> TaskRecord:
        """Cancel a queued or running task; raises InvalidStateError if it had finished.

        A queued task is ``cancelled`` at once. A running one is ``cancelling``
        until the process running it has stopped its body and confirmed (within
        about a second when that process is alive; see docs/guarantees.md).
        """
        if self.test_mode is not None and self.test_mode.knows(task_id):
            return self.test_mode.cancel(task_id)
        return await control.cancel(self.runtime, task_id)

    async def retry(self, task_id: str) -> TaskRecord:
        """Queue a failed or cancelled task again; raises InvalidStateError otherwise."""
        return await control.retry(self.runtime, task_id)
