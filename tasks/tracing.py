"""OpenTelemetry: the enqueuing request's trace goes on in the span of the task's run.

Optional (``pip install quart-taskqueue[otel]``, which brings
``opentelemetry-api``) and off unless ``TASKS_TRACING`` is true. Then:

* at enqueue, the current context is written by the global propagator
  (W3C ``traceparent``/``tracestate`` and ``baggage`` by default) into a JSON
  object stored in the task's ``trace_context`` column (NULL when there is
  no context to carry, e.g. no span is active);
* each run of the task, in whichever process claims it, is one span
  ``task <name>`` of kind ``CONSUMER`` whose parent is that stored context.
  It is current while the body runs (spans the body opens, in a pool thread
  too, are its children) and carries ``task.id``, ``task.name``,
  ``task.queue``, ``task.attempt``, ``task.outcome`` and the messaging
  attributes ``messaging.system``, ``messaging.destination.name`` and
  ``messaging.message.id``. A failed or retried run sets the span's status
  to ERROR and records the exception.

The engine only uses the API: exporting the spans is the application's
choice of SDK and exporter, configured as usual for OpenTelemetry.
"""

from __future__ import annotations

import json
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from tasks.errors import ConfigurationError
from tasks.model import ErrorInfo, TaskRecord

TRACER_NAME = "quart-taskqueue"


def require() -> None:
    """Raise :class:`ConfigurationError` unless the OpenTelemetry API can be imported."""
    try:
        for module in ("opentelemetry.propagate", "opentelemetry.trace"):
            import_module(module)
    except ImportError:
        raise ConfigurationError(
            "TASKS_TRACING needs the OpenTelemetry API: pip install 'quart-taskqueue[otel]'"
        ) from None


def carrier() -> str | None:
    """The current trace context as JSON text for the row (None when there is none)."""
    from opentelemetry import propagate

    headers: dict[str, str] = {}
    propagate.inject(headers)
    return json.dumps(headers, separators=(",", ":"), sort_keys=True) if headers else None


def _parent(text: str | None) -> Any:
    """The context stored with a task; an unreadable one counts as none (a new trace)."""
    from opentelemetry import propagate

    if not text:
        return None
    try:
        headers = json.loads(text)
    except ValueError:
        return None
    if not isinstance(headers, dict):
        return None
    return propagate.extract({str(k): str(v) for k, v in headers.items()})


def _version() -> str:
    try:
        return version("quart-taskqueue")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "0"


class RunSpan:
    """The span of one run: started and made current by the constructor, ended by :meth:`end`.

    Create and end it in the same asyncio task (the run's), so the context
    attached here is detached there.
    """

    def __init__(self, record: TaskRecord) -> None:
        from opentelemetry import context, trace

        tracer = trace.get_tracer(TRACER_NAME, _version())
        self._span = tracer.start_span(
            f"task {record.name}",
            context=_parent(record.trace_context),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "task.id": record.id,
                "task.name": record.name,
                "task.queue": record.queue,
                "task.attempt": record.attempts,
                "messaging.system": TRACER_NAME,
                "messaging.operation": "process",
                "messaging.destination.name": record.queue,
                "messaging.message.id": record.id,
            },
        )
        self._token = context.attach(trace.set_span_in_context(self._span))

    def end(
        self,
        outcome: str,
        error: ErrorInfo | None = None,
        exception: BaseException | None = None,
    ) -> None:
        """Record the outcome, end the span, and restore the context of before."""
        from opentelemetry import context, trace

        try:
            self._span.set_attribute("task.outcome", outcome)
            if outcome in ("failed", "retried", "lost"):
                description = f"{error.type}: {error.message}" if error else outcome
                self._span.set_status(trace.Status(trace.StatusCode.ERROR, description))
                if exception is not None:
                    self._span.record_exception(exception)
            self._span.end()
        finally:
            context.detach(self._token)
