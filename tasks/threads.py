"""A thread pool whose threads never hold up interpreter exit.

The standard ``ThreadPoolExecutor`` joins its threads at exit, so one blocking
task still running after the drain would make Ctrl-C hang until it returns
(the double Ctrl-C of the Flask era). Here threads are daemons: the drain
requeues what is still running and the process may exit; the task runs
again after restart (delivery is at-least-once).
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
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on a pool thread."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a thread pool that was shut down")
            future: Future[T] = Future()
            self._work.put((future, lambda: fn(*args, **kwargs)))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._run, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
            return future

    @property
    def thread_count(self) -> int:
        """Threads started so far (never more than ``max_workers``)."""
        return len(self._threads)

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
