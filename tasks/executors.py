"""The thread and process pools a running app owns (created at startup, closed at shutdown)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from pebble import ProcessPool

from tasks.child import ChildOutcome, init_child, run_in_child
from tasks.errors import ConfigurationError
from tasks.model import Progress
from tasks.threads import DaemonThreadPool

log = logging.getLogger("tasks")

ProgressSink = Callable[[str, Progress], None]
_STOP = ("", 0.0, None, None)


class Executors:
    """A thread pool for plain functions and a process pool for ``executor="process"``.

    The process pool starts on first use (or at startup when a process task is
    registered). Its processes are started with ``spawn`` (forking a process
    that runs threads and an event loop is unsafe), load the app once, are
    replaced after ``process_max_tasks`` tasks, and are killed when a task
    overruns its timeout or is cancelled.
    """

    def __init__(
        self,
        threads: int,
        processes: int,
        process_max_tasks: int,
        app_import: str,
        on_progress: ProgressSink,
    ) -> None:
        self.threads = DaemonThreadPool(threads)
        self._processes = processes
        self._max_tasks = process_max_tasks
        self._app_import = app_import
        self._on_progress = on_progress
        self._pool: ProcessPool | None = None
        self._relay: threading.Thread | None = None
        self._progress: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start_processes(self) -> None:
        """Start the process pool now (idempotent)."""
        if self._pool is not None:
            return
        if not self._app_import:
            raise ConfigurationError(
                "process tasks need TASKS_APP_IMPORT ('module:app' or 'module:create_app')"
                " so pool processes can load the app"
            )
        # Hypercorn starts its workers as daemonic processes (its ``daemon``
        # setting defaults to true), and multiprocessing refuses children to
        # those. The pool's own processes are daemons that die with this one.
        if multiprocessing.current_process().daemon:
            multiprocessing.current_process().daemon = False
        self._loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")
        self._progress = context.Queue()
        self._relay = threading.Thread(
            target=self._relay_progress, name="tasks-progress-relay", daemon=True
        )
        self._relay.start()
        self._pool = ProcessPool(
            max_workers=self._processes,
            max_tasks=self._max_tasks,
            initializer=init_child,
            initargs=(self._app_import, self._progress),
            context=context,
        )

    def run_in_process(
        self,
        name: str,
        task_id: str,
        attempt: int,
        max_attempts: int,
        args: list[Any],
        kwargs: dict[str, Any],
        timeout: float | None,
        queue: str = "default",
    ) -> Future[ChildOutcome]:
        """Schedule a task in a pool process; the future fails with TimeoutError on overrun."""
        self.start_processes()
        assert self._pool is not None
        future: Future[ChildOutcome] = self._pool.schedule(
            run_in_child,
            args=(name, task_id, attempt, max_attempts, args, kwargs, queue),
            timeout=timeout,
        )
        return future

    def _relay_progress(self) -> None:
        while True:
            item = self._progress.get()
            if item == _STOP:
                return
            task_id, current, total, message = item
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(
                    self._on_progress, task_id, Progress(current, total, message)
                )

    async def close(self) -> None:
        """Stop both pools without waiting for threads that are still busy."""
        self.threads.shutdown(wait=False, cancel_futures=True)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.stop()  # type: ignore[no-untyped-call]
            await asyncio.to_thread(pool.join, 5)
            self._progress.put(_STOP)
            if self._relay is not None:
                await asyncio.to_thread(self._relay.join, 5)
            self._progress.close()
