"""Starting and stopping the task system with the app's serving lifespan.

:class:`Lifespan` owns the :class:`~tasks.runtime.Runtime` of one
:class:`~tasks.Tasks` while it runs. Contract:

- ``startup`` opens the store (a store that cannot be opened ends the serving
  process with one critical log line and ``SystemExit(1)``), recovers expired
  leases, starts the pools, the dispatcher and the side loops (leases,
  cancels, retention), and only then accepts work; a failure on the way
  closes whatever it had opened.
- ``shutdown`` refuses new work, drains the dispatcher within
  ``TASKS_SHUTDOWN_TIMEOUT``, stops the side loops, closes pools and store.
  Concurrent calls share one shutdown.
- When a later ``before_serving`` hook fails, Quart runs no shutdown hooks:
  ``got_serving_exception`` closes the system instead.
- In a Hypercorn ``-w N`` worker (SIGTERM left at its default) SIGTERM drains
  first, then ends the process with SIGTERM as before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from tasks import tracing
from tasks.cancels import deliver_cancels
from tasks.config import TasksConfig
from tasks.dispatch import Dispatcher
from tasks.errors import StoreUnavailableError
from tasks.events import EventBus
from tasks.executors import Executors
from tasks.fleet import Fleet
from tasks.leases import keep_leases, reclaim_expired, watch_owners
from tasks.model import Progress
from tasks.retention import purge_forever
from tasks.runtime import Runtime
from tasks.scheduler import run_schedules
from tasks.store import create_store

if TYPE_CHECKING:
    from quart import Quart

    from tasks.extension import Tasks

log = logging.getLogger("tasks")


class Lifespan:
    """Start, stop and SIGTERM handling for one :class:`~tasks.Tasks`."""

    def __init__(self, tasks: Tasks, bus: EventBus) -> None:
        self._tasks = tasks
        self._bus = bus
        self.runtime: Runtime | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._sigterm_loop: asyncio.AbstractEventLoop | None = None
        self._exiting: asyncio.Future[None] | None = None

    async def on_serving_exception(self, sender: Quart, exception: BaseException) -> None:
        """A later startup hook failed: Quart will not run the shutdown hooks, so close now.

        Without this the store's connection threads and the pools would outlive
        the failed startup, and the server process would never exit.
        """
        if self.runtime is not None and self._stopping is None:
            log.error("the app failed to start (%s); closing the task system", exception)
            await self._tasks.shutdown()

    async def startup(self, settings: dict[str, Any], *, enqueue_only: bool) -> None:
        """See :meth:`Tasks.startup <tasks.Tasks.startup>`."""
        tasks = self._tasks
        if tasks.app is None:
            raise RuntimeError("Tasks.init_app(app) was not called")
        if self.runtime is not None:
            raise RuntimeError("this Tasks instance is already running")
        app = tasks.app
        config = TasksConfig.load(app.config, settings, instance_path=app.instance_path)
        if not config.app_import:
            config = _with_app_import(config, app)
        if enqueue_only:
            config = dataclasses.replace(config, workers=False)
        tasks.schedules.check()
        if config.tracing:
            tracing.require()
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
        rt = Runtime(app, config, store, owner, tasks.registry, executors, self._bus)
        rt.hooks = tasks.hooks
        self.runtime = rt
        try:
            if config.workers:
                await _start_workers(rt)
                rt.background.append(
                    asyncio.create_task(run_schedules(rt, tasks.schedules), name="tasks-schedules")
                )
            rt.background.append(asyncio.create_task(purge_forever(rt), name="tasks-retention"))
        except BaseException:
            self.runtime = None
            if rt.fleet is not None:
                await rt.fleet.unregister()
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
        """See :meth:`Tasks.shutdown <tasks.Tasks.shutdown>`."""
        if self._stopping is None:
            if self.runtime is None:
                return
            self._stopping = asyncio.ensure_future(self._stop(self.runtime))
        await asyncio.shield(self._stopping)

    async def _stop(self, rt: Runtime) -> None:
        rt.accepting = False
        try:
            if rt.dispatcher is not None:
                await rt.dispatcher.drain(rt.config.shutdown_timeout)
            for task in rt.background:
                task.cancel()
            await asyncio.gather(*rt.background, return_exceptions=True)
            if rt.fleet is not None:
                await rt.fleet.unregister()
            await rt.executors.close()
        finally:
            await rt.store.close()
            self.runtime = None
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
            await self._tasks.shutdown()
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    def _on_process_progress(self, task_id: str, progress: Progress) -> None:
        """Progress reported by a pool process, handed to the task's context here."""
        rt = self.runtime
        if rt is not None and rt.dispatcher is not None:
            execution = rt.dispatcher.running.get(task_id)
            if execution is not None and execution.context is not None:
                execution.context.progress(progress.current, progress.total, progress.message)


async def _start_workers(rt: Runtime) -> None:
    """Process pool (if a task needs it), registry row, lease recovery, dispatcher, lease,
    liveness and cancel loops."""
    if any(t.executor == "process" for t in rt.registry.values()):
        rt.executors.start_processes()
    rt.fleet = Fleet(rt)
    await rt.fleet.register()
    await reclaim_expired(rt)
    rt.dispatcher = Dispatcher(rt)
    rt.dispatcher.start()
    rt.store.on_new_work(rt.wake)
    rt.store.on_limit_wait(rt.wake_at)
    rt.background.append(asyncio.create_task(keep_leases(rt), name="tasks-leases"))
    rt.background.append(asyncio.create_task(watch_owners(rt), name="tasks-liveness"))
    rt.background.append(asyncio.create_task(deliver_cancels(rt), name="tasks-cancels"))


def _retrieve_exception(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _with_app_import(config: TasksConfig, app: Quart) -> TasksConfig:
    """Find ``module:attribute`` naming ``app`` among loaded modules, for pool processes."""
    for module_name, module in list(sys.modules.items()):
        if module_name == "__main__" or module is None:
            continue
        for attribute in ("app", "application"):
            if getattr(module, attribute, None) is app:
                return dataclasses.replace(config, app_import=f"{module_name}:{attribute}")
    return config


def _safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
