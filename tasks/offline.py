"""Enqueueing outside a served app: CLI commands, scripts and tests.

The task system normally starts with the app's serving lifespan, so a
``quart`` CLI command or a script that enqueues would get
:class:`~tasks.errors.NotAcceptingError`. ``tasks.running()`` opens it for
the length of a block, enqueue-only (no workers: a served app, or
``python -m tasks worker``, runs the tasks), and closes it afterwards:

- ``async with tasks.running():`` in async code, on the current loop;
- ``with tasks.running():`` in plain code: the system runs on a loop in a
  helper thread, so the blocking compat calls (``delay``, ``put``...) work.

Inside a served app (the system already runs) the block changes nothing.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from tasks.errors import ConfigurationError, TasksError

if TYPE_CHECKING:
    from quart import Quart

    from tasks.extension import Tasks


class RunningTasks:
    """The block made by :meth:`Tasks.running`; see the module docstring."""

    def __init__(self, tasks: Tasks, app: Quart | None = None) -> None:
        if app is not None and tasks.app is None:
            tasks.init_app(app)
        elif app is not None and app is not tasks.app:
            raise ConfigurationError("tasks.running(app) got another app than tasks.init_app(app)")
        if tasks.app is None:
            raise ConfigurationError("call tasks.init_app(app) (or pass the app) first")
        self._tasks = tasks
        self._opened = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def __aenter__(self) -> Tasks:
        """Open the store for enqueueing, unless the system already runs here."""
        if self._tasks.accepting:
            return self._tasks
        await self._tasks.startup(enqueue_only=True)
        self._opened = True
        return self._tasks

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close what :meth:`__aenter__` opened (every enqueue is committed already)."""
        if self._opened:
            self._opened = False
            await self._tasks.shutdown()

    def __enter__(self) -> Tasks:
        """:meth:`__aenter__` on a loop in a helper thread, for plain code."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise TasksError("on an event loop, use `async with tasks.running():`")
        loop = asyncio.new_event_loop()
        # A daemon, so a block left by an uncaught signal never holds the interpreter open.
        thread = threading.Thread(target=loop.run_forever, name="tasks-offline", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            return asyncio.run_coroutine_threadsafe(self.__aenter__(), loop).result()
        except BaseException:
            self._stop_loop()
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the system on its helper loop, then stop that loop and its thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.__aexit__(kind, error, tb), loop).result()
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
