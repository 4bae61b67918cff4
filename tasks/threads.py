"""A thread pool whose threads never hold up interpreter exit, nor its capacity.

The standard ``ThreadPoolExecutor`` joins its threads at exit, so one blocking
task still running after the drain would make Ctrl-C hang until it returns
(the double Ctrl-C of the Flask era). Here threads are daemons: the drain
requeues what is still running and the process may exit; the task runs
again after restart (delivery is at-least-once).

A thread cannot be killed. When a call is given up on (its task timed out or
was cancelled) while its thread runs on, :meth:`DaemonThreadPool.abandon`
starts a thread in its place, so the pool keeps ``max_workers`` threads for
new work; the abandoned thread ends once its call returns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_WorkItem = tuple[Future[Any], Callable[[], Any]] | None


class DaemonThreadPool(Executor):
    """At most ``max_workers`` daemon threads, started as work arrives."""

    def __init__(self, max_workers: int, name: str = "tasks-thread") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self._name = name
        self._work: queue.SimpleQueue[_WorkItem] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._abandoned: set[Future[Any]] = set()
        """Calls given up on but still running: their threads retire when they return."""
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._shutdown = False
        self._started = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on a pool thread."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a thread pool that was shut down")
            future: Future[T] = Future()
            self._work.put((future, lambda: fn(*args, **kwargs)))
            if not self._idle.acquire(blocking=False) and self._live() < self.max_workers:
                self._start_thread()
            return future

    def abandon(self, future: Future[Any]) -> None:
        """``future``'s call runs on, but nobody waits for it: start a thread in its place.

        The thread running it leaves the pool once the call returns. Does
        nothing if the call already ended or never started.
        """
        with self._lock:
            if future.done() or not future.running() or future in self._abandoned:
                return
            self._abandoned.add(future)
            if not self._shutdown:
                self._start_thread()

    def _live(self) -> int:
        """Threads that take new work (not those stuck in an abandoned call)."""
        return len(self._threads) - len(self._abandoned)

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._run, name=f"{self._name}-{self._started}", daemon=True
        )
        self._started += 1
        thread.start()
        self._threads.append(thread)

    @property
    def thread_count(self) -> int:
        """Threads that take new work: ``max_workers`` at most, abandoned ones not counted."""
        with self._lock:
            return self._live()

    @property
    def abandoned_count(self) -> int:
        """Threads still running a call that was given up on."""
        with self._lock:
            return len(self._abandoned)

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, call = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    result = call()
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            with self._lock:
                if future in self._abandoned:  # a thread took this one's place: retire
                    self._abandoned.discard(future)
                    self._threads.remove(threading.current_thread())
                    return
            del future, call
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; optionally cancel what has not started and wait for the rest."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._work.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            for _ in self._threads:
                self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
