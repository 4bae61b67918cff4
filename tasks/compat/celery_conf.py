"""Celery's test settings on :class:`~tasks.compat.CeleryTasks`: ``conf.task_always_eager``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.testing import Eager

if TYPE_CHECKING:
    from tasks.extension import Tasks


class CeleryConf:
    """Celery's ``task_always_eager`` and ``task_eager_propagates`` settings.

    With ``task_always_eager`` on, every enqueue of the :class:`~tasks.Tasks`
    runs its task at once, inline (the eager mode of :mod:`tasks.testing`),
    and results and states are read from that mode, as Celery's
    ``EagerResult`` holds them. ``task_eager_propagates`` makes a failing task
    raise from ``delay()`` itself. Set them before the enqueues they govern.
    """

    def __init__(self, tasks: Tasks, always_eager: bool, propagates: bool) -> None:
        self._tasks = tasks
        self._mode: Eager | None = None
        self._propagates = propagates
        self.task_always_eager = always_eager

    @property
    def task_always_eager(self) -> bool:
        """Whether enqueues run their task at once (tests only)."""
        return self._mode is not None

    @task_always_eager.setter
    def task_always_eager(self, value: bool) -> None:
        if value and self._mode is None:
            if self._tasks.test_mode is not None:
                raise RuntimeError("another test mode is already active on these tasks")
            self._mode = Eager(self._tasks, propagate=self._propagates)
            self._tasks.test_mode = self._mode
        elif not value and self._mode is not None:
            if self._tasks.test_mode is self._mode:
                self._tasks.test_mode = None
            self._mode = None

    @property
    def task_eager_propagates(self) -> bool:
        """Whether an eager task's exception is raised from the enqueue."""
        return self._propagates

    @task_eager_propagates.setter
    def task_eager_propagates(self, value: bool) -> None:
        self._propagates = value
        if self._mode is not None:
            self._mode.propagate = value
