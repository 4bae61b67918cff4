"""OpenTelemetry: the enqueuer's trace context travels in the row to the run's span."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from quart import Quart

from tasks import State
from tasks.errors import ConfigurationError
from tasks.store import create_store
from tests.conftest import eventually
from tests.engine import observed_app
from tests.engine.observed_app import tasks

EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture(scope="module", autouse=True)
def provider() -> None:
    trace.set_tracer_provider(_PROVIDER)  # once per process; later calls are ignored


@pytest.fixture
async def app(backend_url: str) -> AsyncIterator[Quart]:
    EXPORTER.clear()
    app = observed_app.create_app(backend_url, shutdown_timeout=2, tracing=True)
    async with app.test_app():
        yield app


async def task_span(task_id: str, attempt: int = 1) -> ReadableSpan:
    async def ended() -> ReadableSpan | None:
        for span in EXPORTER.get_finished_spans():
            attributes = span.attributes or {}
            if attributes.get("task.id") == task_id and attributes.get("task.attempt") == attempt:
                return span
        return None

    found: ReadableSpan = await eventually(ended)
    return found


async def test_the_run_span_continues_the_enqueuers_trace(app: Quart, backend_url: str) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /work") as request:
        handle = await tasks.enqueue("obs.thread", "traced")
    await handle.result(10)
    span = await task_span(handle.id)
    parent = request.get_span_context()
    assert span.context is not None
    assert span.parent is not None
    assert span.context.trace_id == parent.trace_id
    assert span.parent.span_id == parent.span_id
    assert span.name == "task obs.thread"
    assert span.kind == SpanKind.CONSUMER
    assert dict(span.attributes or {}) == {
        "task.id": handle.id,
        "task.name": "obs.thread",
        "task.queue": "default",
        "task.attempt": 1,
        "task.outcome": "succeeded",
        "messaging.system": "quart-taskqueue",
        "messaging.operation": "process",
        "messaging.destination.name": "default",
        "messaging.message.id": handle.id,
    }
    # The context is in the stored row, readable by any process.
    store = create_store(backend_url)
    await store.open()
    try:
        record = await store.get(handle.id)
    finally:
        await store.close()
    assert record is not None
    assert record.trace_context is not None
    assert f"{parent.trace_id:032x}" in json.loads(record.trace_context)["traceparent"]


async def test_spans_made_in_the_body_are_children_and_failures_are_errors(app: Quart) -> None:
    with trace.get_tracer("test").start_as_current_span("request"):
        broken = await tasks.enqueue("obs.broken", "bad input")
    assert (await broken.wait(10)).state == State.FAILED
    span = await task_span(broken.id)
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "ValueError: bad input"
    assert (span.attributes or {})["task.outcome"] == "failed"
    assert [event.name for event in span.events] == ["exception"]

    nested = await tasks.enqueue("obs.nested")
    await nested.result(10)
    outer = await task_span(nested.id)
    [inner] = [s for s in EXPORTER.get_finished_spans() if s.name == f"inner {nested.id}"]
    assert inner.parent is not None
    assert outer.context is not None
    assert inner.parent.span_id == outer.context.span_id


async def test_no_context_no_column(app: Quart) -> None:
    handle = await tasks.enqueue("obs.async", "untraced")  # no span is current
    await handle.result(10)
    assert (await tasks.get(handle.id)).trace_context is None
    span = await task_span(handle.id)
    assert span.parent is None  # a trace of its own


async def test_tracing_without_opentelemetry_is_refused(
    backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> None:
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr("tasks.tracing.import_module", missing)
    observed_app.create_app(backend_url, tracing=True)
    with pytest.raises(ConfigurationError, match=r"pip install 'quart-taskqueue\[otel\]'"):
        await tasks.startup()
    assert not tasks.accepting
