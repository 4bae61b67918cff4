"""One run as the outside sees it: its log fields and lines, its hooks and its trace span.

:class:`RunObserver` wraps :func:`tasks.execution.run_execution`:

* on entry it binds the task's log fields (:mod:`tasks.logs`) for every
  record made during the run;
* :meth:`RunObserver.began` (the body is about to start) starts the trace
  span (:mod:`tasks.tracing`, when ``TASKS_TRACING`` is on), logs the start
  line and calls the ``before_run`` hooks (:mod:`tasks.hooks`);
* :meth:`RunObserver.committed` (the outcome is stored, its event not yet
  emitted) logs the outcome line and ends the span;
* on exit it calls ``after_run`` and ``on_failure`` (or, when no outcome was
  stored, logs that). A run whose body never started logs nothing here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING

from tasks import logs
from tasks.hooks import RunOutcome
from tasks.model import Finish, State

if TYPE_CHECKING:
    from tasks.execution import Execution
    from tasks.runtime import Runtime
    from tasks.tracing import RunSpan

log = logging.getLogger("tasks")


class RunObserver:
    """Log fields, start and end lines, hooks and span of one :class:`Execution`."""

    def __init__(self, rt: Runtime, execution: Execution) -> None:
        self._rt = rt
        self._execution = execution
        self._began: float | None = None
        self._ended: float | None = None
        self._change: Finish | None = None
        self._span: RunSpan | None = None

    async def __aenter__(self) -> RunObserver:
        self._token = logs.bind_record(self._execution.record)
        return self

    async def began(self) -> None:
        """The body is about to start: span, start line, ``before_run`` hooks."""
        record = self._execution.record
        self._began = time.perf_counter()
        if self._rt.config.tracing:
            from tasks.tracing import RunSpan

            try:
                self._span = RunSpan(record)
            except Exception:
                log.exception("could not start the trace span of task %s", record.id)
        logs.started(record)
        if self._rt.hooks.has("before_run"):
            await self._rt.hooks.run("before_run", record)

    def ran(self) -> None:
        """The body has ended (its outcome is about to be committed)."""
        if self._ended is None:
            self._ended = time.perf_counter()

    def committed(self, change: Finish) -> None:
        """The run's outcome ``change`` is stored: log it and end the span.

        Called before the outcome's event is emitted, so whoever that event
        wakes (``wait()``, ``result()``) finds the line already logged.
        """
        self.ran()
        self._change = change
        if self._began is None:
            return
        record, error = self._execution.record, self._execution.error
        logs.ended(record, change, self._duration(), error)
        if self._span is not None:
            span, self._span = self._span, None
            try:
                span.end(logs.outcome_name(change), change.error, error)
            except Exception:
                log.exception("could not end the trace span of task %s", record.id)

    def _duration(self) -> float:
        assert self._began is not None
        return (self._ended or time.perf_counter()) - self._began

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._began is not None:
                await self._report(cancelled=isinstance(exc, asyncio.CancelledError))
        finally:
            logs.unbind(self._token)

    async def _report(self, *, cancelled: bool) -> None:
        record, change = self._execution.record, self._change
        duration, error = self._duration(), self._execution.error
        if change is None:  # not stored: the lease was lost, or the commit failed
            if self._span is not None:
                try:
                    self._span.end("lost", exception=error)
                except Exception:
                    log.exception("could not end the trace span of task %s", record.id)
            log.info(
                "task %s %s ended after %.3f s; its outcome was not recorded by this process",
                record.name,
                record.id,
                duration,
                extra={"task_outcome": "lost", "task_duration": round(duration, 6)},
            )
            return
        hooks = self._rt.hooks
        failed = change.state == State.FAILED and hooks.has("on_failure")
        if cancelled or not (failed or hooks.has("after_run")):
            return  # no hook, or the run's own task is being cancelled: no awaiting now
        outcome = RunOutcome(logs.outcome_name(change), change.state, duration, change.error, error)
        if hooks.has("after_run"):
            await hooks.run("after_run", record, outcome)
        if failed:
            await hooks.run("on_failure", record, outcome)
