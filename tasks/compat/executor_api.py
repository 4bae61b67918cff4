"""``Executor``: Flask-Executor's API on the app's own thread pool.

In memory, not durable: a submitted function lives only in this process. If
the process stops (deploy, crash, SIGTERM) before it runs or while it runs,
the work is lost and nothing retries it. Work that must survive a restart
belongs in a durable task (``@tasks.task`` and ``await some_task.enqueue()``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from tasks.compat.bridge import refuse_on_loop
from tasks.errors import ConfigurationError, NotAcceptingError

if TYPE_CHECKING:
    from quart import Quart

    from tasks.extension import Tasks
    from tasks.runtime import Runtime

log = logging.getLogger("tasks")
P = ParamSpec("P")
T = TypeVar("T")

DoneCallback = Callable[[concurrent.futures.Future[Any]], object]


class AwaitableFuture(concurrent.futures.Future[T]):
    """A :class:`concurrent.futures.Future` that ``async`` code can also ``await``.

    ``result()`` and ``exception()`` on the event loop thread, before the
    future is done, raise :class:`~tasks.compat.bridge.BlockingCallError`
    instead of stalling the loop: ``await`` the future there.
    """

    def __await__(self) -> Generator[Any, None, T]:
        return asyncio.wrap_future(self).__await__()

    def result(self, timeout: float | None = None) -> T:
        """The function's return value; blocks in threads, refuses on the loop."""
        if not self.done():
            refuse_on_loop("Future.result()", "await future")
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The function's exception, or None; blocks in threads, refuses on the loop."""
        if not self.done():
            refuse_on_loop("Future.exception()", "await future")
        return super().exception(timeout)


class FutureCollection:
    """Futures stored under a key by :meth:`Executor.submit_stored` (thread-safe).

    Holds at most ``max_length`` futures: adding past it forgets the oldest
    ones that are done.
    """

    def __init__(self, max_length: int = 50) -> None:
        self.max_length = max_length
        self._futures: OrderedDict[Any, AwaitableFuture[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        return key in self._futures

    def __len__(self) -> int:
        return len(self._futures)

    def add(self, key: Any, future: AwaitableFuture[Any]) -> None:
        """Store ``future`` under ``key``; raise ValueError if the key is taken."""
        with self._lock:
            if key in self._futures:
                raise ValueError(f"a future is already stored under {key!r}")
            self._futures[key] = future
            for old in list(self._futures):
                if len(self._futures) <= self.max_length:
                    break
                if self._futures[old].done():
                    del self._futures[old]

    def get(self, key: Any) -> AwaitableFuture[Any] | None:
        """The future stored under ``key``, or None."""
        return self._futures.get(key)

    def pop(self, key: Any) -> AwaitableFuture[Any] | None:
        """Remove and return the future stored under ``key``, or None."""
        with self._lock:
            return self._futures.pop(key, None)

    def done(self, key: Any) -> bool | None:
        """Whether the future under ``key`` is done; None when there is none."""
        future = self._futures.get(key)
        return None if future is None else future.done()

    def running(self, key: Any) -> bool | None:
        """Whether the future under ``key`` is running; None when there is none."""
        future = self._futures.get(key)
        return None if future is None else future.running()


class Executor:
    """Run plain functions in the background, Flask-Executor style; in memory only.

    ``executor = Executor(tasks)``; ``executor.init_app(app)`` after
    ``tasks.init_app(app)``. Functions run in the app's thread pool (the one
    blocking tasks use; ``TASKS_THREADS`` sizes it), inside a fresh app context
    (``current_app`` works, and its teardown runs when the function returns),
    with a copy of the caller's ``contextvars``. ``submit`` never blocks, so it
    is safe in ``async def`` views; ``await`` the future there. A function that
    raises is logged once (logger ``tasks``, with the traceback), and its
    future holds the exception.

    Not durable: see the module docstring.
    """

    def __init__(self, tasks: Tasks, app: Quart | None = None, *, name: str = "executor") -> None:
        self.tasks = tasks
        self.name = name
        self.futures = FutureCollection()
        self._default_callbacks: list[DoneCallback] = []
        self._running: set[asyncio.Task[None]] = set()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        """Read Flask-Executor's settings and register under ``app.extensions[name]``.

        ``EXECUTOR_MAX_WORKERS`` becomes ``TASKS_THREADS`` unless that is set;
        ``EXECUTOR_FUTURES_MAX_LENGTH`` bounds :attr:`futures`;
        ``EXECUTOR_TYPE="process"`` is refused (use ``executor="process"`` tasks).
        """
        if app.extensions.get("tasks") is not self.tasks:
            raise ConfigurationError("call tasks.init_app(app) before Executor.init_app(app)")
        if app.config.get("EXECUTOR_TYPE", "thread") != "thread":
            raise ConfigurationError(
                "Executor runs functions on the app's thread pool only; for CPU-heavy work"
                ' register a durable task with @tasks.task(executor="process")'
            )
        workers = app.config.get("EXECUTOR_MAX_WORKERS")
        if workers is not None and "TASKS_THREADS" not in app.config:
            app.config["TASKS_THREADS"] = int(workers)
        self.futures.max_length = int(app.config.get("EXECUTOR_FUTURES_MAX_LENGTH", 50))
        app.extensions[self.name] = self

    def add_default_done_callback(self, fn: DoneCallback) -> None:
        """Add ``fn(future)`` to every future submitted from now on.

        It runs in the pool thread that finished the work, inside its app context.
        """
        self._default_callbacks.append(fn)

    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> AwaitableFuture[T]:
        """Schedule ``fn(*args, **kwargs)`` on the app's thread pool; never blocks."""
        if inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"{fn.__qualname__} is a coroutine function; Executor runs plain functions."
                " Use a durable task (@tasks.task) for coroutines"
            )
        rt = self.tasks.runtime
        if not rt.accepting:
            raise NotAcceptingError("the app is shutting down; no new background work")
        future: AwaitableFuture[T] = AwaitableFuture()
        for callback in self._default_callbacks:
            future.add_done_callback(callback)
        caller = contextvars.copy_context()
        work = functools.partial(fn, *args, **kwargs)

        def start() -> None:
            task = rt.loop.create_task(self._run(rt, future, work), context=caller)
            self._running.add(task)
            task.add_done_callback(self._running.discard)

        try:
            if _running_loop() is rt.loop:
                start()
            else:
                rt.loop.call_soon_threadsafe(start)
        except RuntimeError as exc:
            raise NotAcceptingError(f"the app's event loop is not running: {exc}") from None
        return future

    def submit_stored(
        self, key: Any, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> AwaitableFuture[T]:
        """:meth:`submit` and keep the future in :attr:`futures` under ``key``."""
        if key in self.futures:
            raise ValueError(f"a future is already stored under {key!r}")
        future = self.submit(fn, *args, **kwargs)
        self.futures.add(key, future)
        return future

    def map(
        self, fn: Callable[..., T], *iterables: Iterable[Any], timeout: float | None = None
    ) -> Iterator[T]:
        """Like :meth:`concurrent.futures.Executor.map`: submit all now, yield in order.

        Iterating blocks, so it is for threads; ``async`` code uses :meth:`amap`.
        """
        futures = [self.submit(fn, *args) for args in zip(*iterables, strict=False)]
        deadline = None if timeout is None else time.monotonic() + timeout

        def results() -> Iterator[T]:
            try:
                for future in futures:
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    yield future.result(left)
            finally:
                for future in futures:
                    future.cancel()

        return results()

    async def amap(
        self, fn: Callable[..., T], *iterables: Iterable[Any], timeout: float | None = None
    ) -> AsyncIterator[T]:
        """:meth:`map` for ``async`` code: ``async for value in executor.amap(...)``."""
        futures = [self.submit(fn, *args) for args in zip(*iterables, strict=False)]
        try:
            async with asyncio.timeout(timeout):
                for future in futures:
                    yield await future
        finally:
            for future in futures:
                future.cancel()

    async def _run(self, rt: Runtime, future: AwaitableFuture[T], work: Callable[[], T]) -> None:
        async with rt.app.app_context():
            call = functools.partial(contextvars.copy_context().run, _settle, future, work)
            try:
                await rt.loop.run_in_executor(rt.executors.threads, call)
            except RuntimeError:
                # The pool was shut down before the work could be handed to it.
                if not future.cancel():
                    raise
            except asyncio.CancelledError:
                # Either this coroutine was cancelled, or the pool dropped the work
                # unstarted at shutdown; only the latter is ours to absorb.
                future.cancel()
                current = asyncio.current_task()
                if not future.done() or (current is not None and current.cancelling()):
                    raise


def _settle(future: AwaitableFuture[T], work: Callable[[], T]) -> None:
    """Run ``work`` in the pool thread and record its outcome (callbacks run here).

    A failure is logged once, with its traceback, before it reaches the future:
    as with durable tasks, nobody has to read the future for it to be seen.
    """
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = work()
    except BaseException as exc:
        name = getattr(getattr(work, "func", work), "__qualname__", repr(work))
        log.error("executor job %s failed: %s: %s", name, type(exc).__qualname__, exc, exc_info=exc)
        future.set_exception(exc)
    else:
        future.set_result(result)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
