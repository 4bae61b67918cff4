"""The Quart extension: task registration, enqueueing, and the serving lifespan."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Coroutine, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar, overload

from quart.signals import got_serving_exception

from tasks.cancels import deliver_cancels
from tasks.config import TasksConfig
from tasks.dispatch import Dispatcher
from tasks.errors import (
    InvalidArgumentsError,
    InvalidStateError,
    NotAcceptingError,
    StoreUnavailableError,
    TaskNotFoundError,
    UnknownTaskError,
)
from tasks.events import EventBus, Listener, TaskEvent
from tasks.executors import Executors
from tasks.handle import TaskHandle, wait_for_change
from tasks.leases import keep_leases, reclaim_expired
from tasks.model import NewTask, Progress, State, TaskRecord, new_id
from tasks.offline import RunningTasks
from tasks.orm import driver_connection
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
    executor_for,
)
from tasks.retention import purge_forever
from tasks.runtime import Runtime
from tasks.serialization import dumps
from tasks.store import Page, Store, create_store
from tasks.summary import SummaryPage, TaskSummary

if TYPE_CHECKING:
    from quart import Quart

    from tasks.testing import TestMode

log = logging.getLogger("tasks")
T = TypeVar("T")
_LIVE: weakref.WeakSet[Tasks] = weakref.WeakSet()

_WAIT_POLL = 0.5
"""Seconds between store reads while waiting on a task another process may finish."""


class Tasks:
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
        self._runtime: Runtime | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._sigterm_loop: asyncio.AbstractEventLoop | None = None
        self._exiting: asyncio.Future[None] | None = None
        self.app: Quart | None = None
        self.test_mode: TestMode | None = None
        """Set by :func:`tasks.testing.eager` / :func:`tasks.testing.capture` in tests."""
        _LIVE.add(self)
        if app is not None:
            self.init_app(app)

    @staticmethod
    def live() -> list[Tasks]:
        """Every ``Tasks`` object that exists in this process (for test fixtures)."""
        return list(_LIVE)

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
        """
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive")

        def register(function: Callable[..., Any]) -> Task[..., Any]:
            task_name = name or f"{function.__module__}.{function.__qualname__}"
            if task_name in self.registry:
                raise ValueError(f"a task named {task_name!r} is already registered")
            task: Task[..., Any] = Task(
                self,
                function,
                name=task_name,
                executor=executor_for(function, executor),
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
            )
            self.registry[task_name] = task
            return task

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

    # -- app binding and lifespan --------------------------------------------

    def init_app(self, app: Quart) -> None:
        """Bind to ``app``: start with its serving lifespan, drain when it stops."""
        self.app = app
        app.extensions["tasks"] = self
        app.before_serving(self.startup)
        app.after_serving(self.shutdown)
        got_serving_exception.connect(self._on_serving_exception, app)

    async def _on_serving_exception(self, sender: Quart, exception: BaseException) -> None:
        """A later startup hook failed: Quart will not run the shutdown hooks, so close now.

        Without this the store's connection threads and the pools would outlive
        the failed startup, and the server process would never exit.
        """
        if self._runtime is not None and self._stopping is None:
            log.error("the app failed to start (%s); closing the task system", exception)
            await self.shutdown()

    def running(self, app: Quart | None = None) -> RunningTasks:
        """``with``/``async with tasks.running():`` enqueue outside a served app.

        For CLI commands, scripts and tests; see :mod:`tasks.offline`.
        """
        return RunningTasks(self, app)

    @property
    def runtime(self) -> Runtime:
        """The running system; raises NotAcceptingError when the app is not serving."""
        if self._runtime is None:
            raise NotAcceptingError(
                "the task system is not running (the app is not serving); outside a served"
                " app (a CLI command, a script), enqueue inside `with tasks.running():`"
            )
        return self._runtime

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
        return self._runtime is not None and self._runtime.accepting

    async def startup(self, *, enqueue_only: bool = False) -> None:
        """Open the store, migrate, recover expired leases, start pools and workers.

        ``enqueue_only`` starts no workers whatever ``TASKS_WORKERS`` says (see
        :meth:`running`).

        If the store cannot be opened or written, one critical log line names
        the database and the cause, and ``SystemExit(1)`` ends the serving
        process without a traceback (there is nothing useful it could serve).
        """
        if self.app is None:
            raise RuntimeError("Tasks.init_app(app) was not called")
        if self._runtime is not None:
            raise RuntimeError("this Tasks instance is already running")
        app = self.app
        config = TasksConfig.load(app.config, self._settings, instance_path=app.instance_path)
        if not config.app_import:
            config = _with_app_import(config, app)
        if enqueue_only:
            config = dataclasses.replace(config, workers=False)
        store = create_store(
            config.database_url,
            sqlite_synchronous=config.sqlite_synchronous,
            pool_size=config.pool_size,
        )
        try:
            await store.open()
        except StoreUnavailableError as exc:
            log.critical("task store unavailable, cannot start: %s", exc)
            serving = asyncio.current_task()
            if serving is not None:  # the exit is the report: no "never retrieved" traceback
                serving.add_done_callback(_retrieve_exception)
            raise SystemExit(1) from None
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        executors = Executors(
            config.thread_count,
            config.process_count,
            config.process_max_tasks,
            config.app_import,
            self._on_process_progress,
        )
        rt = Runtime(app, config, store, owner, self.registry, executors, self._bus)
        self._runtime = rt
        try:
            if config.workers:
                if any(t.executor == "process" for t in self.registry.values()):
                    rt.executors.start_processes()
                await reclaim_expired(rt)
                rt.dispatcher = Dispatcher(rt)
                rt.dispatcher.start()
                store.on_new_work(rt.wake)
                rt.background.append(asyncio.create_task(keep_leases(rt), name="tasks-leases"))
                rt.background.append(asyncio.create_task(deliver_cancels(rt), name="tasks-cancels"))
            rt.background.append(asyncio.create_task(purge_forever(rt), name="tasks-retention"))
        except BaseException:
            self._runtime = None
            await rt.executors.close()
            await store.close()
            raise
        rt.accepting = True
        self._drain_on_sigterm()
        log.info(
            "tasks started: store %s, %d workers on queues %s",
            _safe_url(config.database_url),
            config.concurrency if config.workers else 0,
            ",".join(config.queues),
        )

    async def shutdown(self) -> None:
        """Refuse new enqueues, drain the workers, close pools and store.

        Calls made while a shutdown is under way wait for that one to finish.
        """
        if self._stopping is None:
            if self._runtime is None:
                return
            self._stopping = asyncio.ensure_future(self._stop(self._runtime))
        await asyncio.shield(self._stopping)

    async def _stop(self, rt: Runtime) -> None:
        rt.accepting = False
        try:
            if rt.dispatcher is not None:
                await rt.dispatcher.drain(rt.config.shutdown_timeout)
            for task in rt.background:
                task.cancel()
            await asyncio.gather(*rt.background, return_exceptions=True)
            await rt.executors.close()
        finally:
            await rt.store.close()
            self._runtime = None
            self._stopping = None
            if self._sigterm_loop is not None:
                self._sigterm_loop.remove_signal_handler(signal.SIGTERM)
                self._sigterm_loop = None
            log.info("tasks stopped")

    def _drain_on_sigterm(self) -> None:
        """Where SIGTERM would kill the process outright, drain the tasks first.

        A Hypercorn ``-w N`` worker leaves SIGTERM at its default: the master
        sends it to the remaining workers as soon as one has exited, and
        systemd sends it to every process of the group, so a drain in progress
        would be cut short. Here SIGTERM starts the shutdown (or joins the one
        under way) and, once the tasks are drained and the store closed, ends
        the process with SIGTERM as before. Processes whose server handles
        SIGTERM itself (single-process Hypercorn, Uvicorn) are left alone.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
        except (NotImplementedError, RuntimeError, ValueError):
            return
        self._sigterm_loop = loop

    def _on_sigterm(self) -> None:
        if self._exiting is None:  # a repeated SIGTERM changes nothing
            log.warning("SIGTERM: draining tasks before this process exits")
            self._exiting = asyncio.ensure_future(self._exit_after_shutdown())

    async def _exit_after_shutdown(self) -> None:
        try:
            await self.shutdown()
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    def _on_process_progress(self, task_id: str, progress: Progress) -> None:
        rt = self._runtime
        if rt is not None and rt.dispatcher is not None:
            execution = rt.dispatcher.running.get(task_id)
            if execution is not None and execution.context is not None:
                execution.context.progress(progress.current, progress.total, progress.message)

    # -- enqueueing ----------------------------------------------------------

    def get_task(self, name: str) -> Task[..., Any]:
        """The registered task called ``name``; raises UnknownTaskError."""
        try:
            return self.registry[name]
        except KeyError:
            raise UnknownTaskError(f"no task named {name!r} is registered") from None

    async def enqueue(
        self, name: str, /, *args: Any, _options: EnqueueOptions | None = None, **kwargs: Any
    ) -> TaskHandle[Any]:
        """Enqueue a registered task by name (untyped; prefer ``some_task.enqueue``)."""
        task = self.get_task(name)
        task.check_arguments(args, kwargs)
        return await self.enqueue_call(TaskCall(task, args, kwargs, _options or EnqueueOptions()))

    async def enqueue_call(self, call: TaskCall[T]) -> TaskHandle[T]:
        """Enqueue one prepared call; returns after the row is committed."""
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
        [(row, handle)] = await self._enqueue_rows([call])
        if not handle.created:
            return handle, await self.get(handle.id)
        record = TaskRecord(
            id=row.id,
            name=row.name,
            queue=row.queue,
            state=State.QUEUED,
            args=json.loads(row.args_json),
            kwargs=json.loads(row.kwargs_json),
            priority=row.priority,
            attempts=0,
            max_attempts=row.max_attempts,
            run_at=row.run_at,
            created_at=row.created_at,
            idempotency_key=row.idempotency_key,
        )
        return handle, record

    async def enqueue_many(self, calls: Iterable[TaskCall[Any]]) -> list[TaskHandle[Any]]:
        """Enqueue several calls in one transaction; all are stored or none is."""
        if self.test_mode is not None:
            return await self.test_mode.enqueue(calls)
        return [handle for _, handle in await self._enqueue_rows(calls)]

    async def _enqueue_rows(
        self, calls: Iterable[TaskCall[Any]]
    ) -> list[tuple[NewTask, TaskHandle[Any]]]:
        rt = self.runtime
        if not rt.accepting:
            raise NotAcceptingError("the task system is shutting down; try again later")
        now = time.time()
        rows = [self._new_task(rt, call, now) for call in calls]
        if not rows:
            return []
        # Wake the dispatcher before the insert is submitted (both stores queue
        # the write before their first await): the claim it makes is queued
        # after the insert, so it shares the insert's transaction or a later
        # one (claims are applied after inserts) and always sees the new rows;
        # the task then starts after one commit instead of two.
        if min(row.run_at for row in rows) <= now:
            rt.wake()
        inserted = await rt.store.insert(rows, max_queued=rt.config.max_queued)
        for row in rows:
            if row.run_at > now:
                rt.wake_at(row.run_at)
        handles = []
        for row, result in zip(rows, inserted, strict=True):
            if result.created:
                self._bus.emit(TaskEvent("enqueued", row.id, row.name))
            handles.append((row, TaskHandle[Any](self, result.id, created=result.created)))
        return handles

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
        rt = self.runtime
        if not rt.accepting:
            raise NotAcceptingError("the task system is shutting down; try again later")
        now = time.time()
        rows = [self._new_task(rt, call, now) for call in calls]
        inserted = await rt.store.insert_in(await driver_connection(connection), rows)
        for row in rows:
            rt.wake_at(max(row.run_at, now + 0.05))
        return [TaskHandle[Any](self, r.id, created=r.created) for r in inserted]

    def _new_task(self, rt: Runtime, call: TaskCall[Any], now: float) -> NewTask:
        task, options = call.task, call.options
        if self.registry.get(task.name) is not task:
            raise UnknownTaskError(f"task {task.name!r} is not registered with this Tasks")
        run_at = now
        if options.run_at is not None:
            run_at = options.run_at
        elif options.delay:
            run_at = now + options.delay
        max_attempts = options.max_attempts or task.max_attempts or rt.config.default_max_attempts
        return NewTask(
            id=new_id(),
            name=task.name,
            queue=options.queue or task.queue,
            args_json=dumps(list(call.args), f"the arguments of task {task.name}"),
            kwargs_json=dumps(call.kwargs, f"the keyword arguments of task {task.name}"),
            priority=task.priority if options.priority is None else options.priority,
            max_attempts=max_attempts,
            run_at=run_at,
            created_at=now,
            idempotency_key=options.idempotency_key,
            timeout=options.timeout,
        )

    # -- inspection and control ----------------------------------------------

    async def get(self, task_id: str) -> TaskRecord:
        """The stored record of a task; raises TaskNotFoundError."""
        if self.test_mode is not None and self.test_mode.knows(task_id):
            return self.test_mode.get(task_id)
        record = await self.runtime.store.get(task_id)
        if record is None:
            raise TaskNotFoundError(f"no task with id {task_id!r}")
        return record

    async def list(
        self,
        *,
        state: State | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A page of tasks, newest first (see :meth:`Store.list`)."""
        if not 1 <= limit <= 1000:
            raise InvalidArgumentsError("limit must be between 1 and 1000")
        return await self.runtime.store.list(state=state, name=name, limit=limit, cursor=cursor)

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
        if not 1 <= limit <= 1000:
            raise InvalidArgumentsError("limit must be between 1 and 1000")
        store = self.runtime.store
        return await store.list_summaries(state=state, name=name, limit=limit, cursor=cursor)

    async def get_summary(self, task_id: str) -> TaskSummary:
        """The summary of one task; raises TaskNotFoundError."""
        summary = await self.runtime.store.get_summary(task_id)
        if summary is None:
            raise TaskNotFoundError(f"no task with id {task_id!r}")
        return summary

    async def wait(self, task_id: str, timeout: float | None = None) -> TaskRecord:
        """Wait until a task has finished; see :meth:`TaskHandle.wait`."""
        if self.test_mode is not None and self.test_mode.knows(task_id):
            return await self.test_mode.wait(task_id)
        async with asyncio.timeout(timeout):
            with self._bus.watch(task_id) as changed:
                while True:
                    changed.clear()
                    record = await self.get(task_id)
                    if record.done:
                        return record
                    await wait_for_change(changed, _WAIT_POLL)

    async def cancel(self, task_id: str) -> TaskRecord:
        """Cancel a queued or running task; raises InvalidStateError if it had finished.

        A queued task is ``cancelled`` at once. A running one is ``cancelling``
        until the process running it has stopped its body and confirmed (within
        about a second when that process is alive; see docs/guarantees.md).
        """
        if self.test_mode is not None and self.test_mode.knows(task_id):
            return self.test_mode.cancel(task_id)
        rt = self.runtime
        before = await self.get(task_id)
        if before.done:
            raise InvalidStateError(f"task {task_id} has already {before.state.value}")
        record = await rt.store.cancel(task_id)
        if record is None:
            raise TaskNotFoundError(f"no task with id {task_id!r}")
        if record.state not in (State.CANCELLED, State.CANCELLING):
            raise InvalidStateError(f"task {task_id} has already {record.state.value}")
        if rt.dispatcher is not None:
            rt.dispatcher.cancel_local(task_id)
        if record.state == State.CANCELLED:
            self._bus.emit(TaskEvent("cancelled", task_id, record.name))
        else:
            self._bus.touch(task_id)
        return record

    async def retry(self, task_id: str) -> TaskRecord:
        """Queue a failed or cancelled task again; raises InvalidStateError otherwise."""
        rt = self.runtime
        before = await self.get(task_id)
        if before.state == State.CANCELLING:
            raise InvalidStateError(
                f"task {task_id} is still stopping (cancelling): its run has not ended yet;"
                " retry it once it is cancelled"
            )
        if before.state not in (State.FAILED, State.CANCELLED):
            raise InvalidStateError(
                f"only failed or cancelled tasks can be retried; task {task_id} is"
                f" {before.state.value}"
            )
        record = await rt.store.retry(task_id)
        if record is None or record.state != State.QUEUED:
            raise InvalidStateError(f"task {task_id} could not be retried")
        rt.wake()
        self._bus.emit(TaskEvent("enqueued", task_id, record.name))
        return record


def _retrieve_exception(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _with_app_import(config: TasksConfig, app: Quart) -> TasksConfig:
    """Find ``module:attribute`` naming ``app`` among loaded modules, for pool processes."""
    from dataclasses import replace

    for module_name, module in list(sys.modules.items()):
        if module_name == "__main__" or module is None:
            continue
        for attribute in ("app", "application"):
            if getattr(module, attribute, None) is app:
                return replace(config, app_import=f"{module_name}:{attribute}")
    return config


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
