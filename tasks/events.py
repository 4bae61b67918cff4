"""Task lifecycle events inside one process: listeners (metrics, callbacks) and watchers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger("tasks")

EventKind = Literal[
    "enqueued", "started", "progress", "succeeded", "failed", "retried", "cancelled", "released"
]


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """Something that happened to a task in this process, after it was committed."""

    kind: EventKind
    task_id: str
    name: str
    queue_wait: float | None = None
    """For ``started``: seconds from due time to start."""
    run_time: float | None = None
    """For outcomes: seconds the run took."""
    limited: bool = False
    """For ``started``: the task was subject to a concurrency or rate limit or a queue cap,
    so its ``queue_wait`` includes time held back by them."""


Listener = Callable[[TaskEvent], None]


class EventBus:
    """Fans committed changes out to listeners and to coroutines watching one task."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._watchers: dict[str, set[asyncio.Event]] = {}

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` for every event; it must be quick and must not block."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``; removing one that was never added is a no-op."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, event: TaskEvent) -> None:
        """Deliver an event; a failing listener is logged, never propagated."""
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("task event listener %r failed", listener)
        self.touch(event.task_id)

    def touch(self, task_id: str) -> None:
        """Wake coroutines watching ``task_id`` (its stored row changed)."""
        for waiter in self._watchers.get(task_id, ()):
            waiter.set()

    @contextmanager
    def watch(self, task_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``task_id`` changes in this process."""
        waiter = asyncio.Event()
        self._watchers.setdefault(task_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._watchers.get(task_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._watchers[task_id]
