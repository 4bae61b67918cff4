"""The running task's own context: its id, progress reporting and cancellation."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextvars import ContextVar

from tasks.errors import InvalidArgumentsError
from tasks.model import Progress

_current: ContextVar[TaskContext | None] = ContextVar("tasks_current", default=None)


class TaskContext:
    """What a task knows about its own run. Get it with :func:`current_task`.

    Safe to use from the event loop, from a pool thread and from a pool process.
    """

    __slots__ = ("_cancelled", "_report", "_seen", "attempt", "id", "max_attempts", "name")

    def __init__(
        self,
        task_id: str,
        name: str,
        attempt: int,
        max_attempts: int,
        report: Callable[[Progress], None],
    ) -> None:
        self.id = task_id
        self.name = name
        self.attempt = attempt
        self.max_attempts = max_attempts
        self._report = report
        self._cancelled = False
        self._seen = False

    def progress(
        self, current: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress. Writes are throttled; the last report is always kept."""
        for label, value in (("current", current), ("total", total)):
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise InvalidArgumentsError(f"progress {label} must be a finite number")
        if message is not None and not isinstance(message, str):
            raise InvalidArgumentsError("progress message must be a string")
        self._report(Progress(current, total, message))

    @property
    def cancelled(self) -> bool:
        """True once the task was cancelled, timed out, or shutdown began; code should stop.

        A run that read True here during a shutdown is requeued, whatever it
        then returns or raises: it may have stopped early.
        """
        if self._cancelled:
            self._seen = True
        return self._cancelled

    @property
    def cancel_seen(self) -> bool:
        """Whether the task's code read :attr:`cancelled` as True."""
        return self._seen

    def mark_cancelled(self) -> None:
        """Tell cooperative (thread) code that it should stop.

        A plain flag: setting and reading an attribute is atomic under the GIL,
        and nothing waits on it (a ``threading.Event`` per task cost ~3 %).
        """
        self._cancelled = True


def current_task() -> TaskContext:
    """The context of the task running in this coroutine, thread or process."""
    context = _current.get()
    if context is None:
        raise RuntimeError("current_task() was called outside of a running task")
    return context


def set_current(context: TaskContext | None) -> None:
    """Make ``context`` the current task for this context (used by executors)."""
    _current.set(context)
