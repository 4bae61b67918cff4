"""Log lines of each run and the task fields on every record made inside a task (caplog)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from pythonjsonlogger.json import JsonFormatter
from quart import Quart

from tasks import State
from tests.conftest import eventually
from tests.engine import observed_app
from tests.engine.observed_app import tasks

FIELDS = ("task_id", "task_name", "task_queue", "task_attempt")


@pytest.fixture
async def app(backend_url: str) -> AsyncIterator[Quart]:
    app = observed_app.create_app(backend_url, shutdown_timeout=2)
    async with app.test_app():
        yield app


def fields(record: logging.LogRecord) -> tuple[object, ...]:
    return tuple(getattr(record, name, None) for name in FIELDS)


def by_message(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


async def logged(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    """The records with ``text``, once there is one: an outcome line follows the commit
    that ``wait()`` and ``result()`` see, so it may come a moment later."""

    async def found() -> list[logging.LogRecord]:
        return by_message(caplog, text)

    records: list[logging.LogRecord] = await eventually(found)
    return records


@pytest.mark.parametrize("name", ["obs.async", "obs.thread"])
async def test_user_records_inside_a_task_carry_its_fields(
    app: Quart, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    caplog.set_level(logging.INFO)
    handle = await tasks.enqueue(name, "hello")
    assert await handle.result(10) == "hello"
    [record] = by_message(caplog, "body says hello")
    assert record.name == "user.code"
    assert fields(record) == (handle.id, name, "default", 1)
    outside = logging.getLogger("user.code").makeRecord("user.code", 20, "f", 1, "m", (), None)
    assert not hasattr(outside, "task_id"), "records outside a task have no task fields"


async def test_records_in_a_pool_process_carry_the_fields(app: Quart) -> None:
    handle = await tasks.enqueue("obs.process", "hi")
    carried = await handle.result(60)
    assert carried == {
        "task_id": handle.id,
        "task_name": "obs.process",
        "task_queue": "default",
        "task_attempt": 1,
    }


async def test_start_and_end_lines_at_info(app: Quart, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tasks")
    handle = await tasks.enqueue("obs.async", "x")
    await handle.result(10)
    [start] = by_message(caplog, f"task obs.async {handle.id} started (attempt 1 of 3)")
    [end] = await logged(caplog, f"task obs.async {handle.id} succeeded after")
    for record in (start, end):
        assert record.levelno == logging.INFO
        assert fields(record) == (handle.id, "obs.async", "default", 1)
    assert end.task_outcome == "succeeded"  # type: ignore[attr-defined]
    assert end.task_duration >= 0  # type: ignore[attr-defined]


async def test_a_retry_is_one_warning_line_and_a_final_failure_an_error_with_traceback(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tasks")
    key = uuid.uuid4().hex
    flaky = await tasks.enqueue("obs.flaky", key)
    assert (await flaky.wait(10)).state == State.SUCCEEDED
    [retry] = by_message(caplog, f"task obs.flaky {flaky.id} failed on attempt 1 of 2")
    assert retry.levelno == logging.WARNING
    assert retry.exc_info is None
    assert "\n" not in retry.getMessage()
    assert "will retry in" in retry.getMessage()
    assert f"ConnectionError: first try of {key} fails" in retry.getMessage()
    assert (retry.task_outcome, retry.task_attempt) == ("retried", 1)  # type: ignore[attr-defined]
    [second] = await logged(caplog, f"task obs.flaky {flaky.id} succeeded")
    assert second.task_attempt == 2  # type: ignore[attr-defined]

    broken = await tasks.enqueue("obs.broken", "it broke")
    assert (await broken.wait(10)).state == State.FAILED
    [error] = await logged(caplog, f"task obs.broken {broken.id} failed")
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == [error]
    assert error.getMessage().startswith(f"task obs.broken {broken.id} failed on attempt 1 of 1")
    assert "ValueError: it broke" in error.getMessage()
    assert error.exc_info is not None
    assert "raise ValueError(message)" in caplog.text


async def test_a_failure_in_a_pool_process_logs_its_traceback(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="tasks")
    handle = await tasks.enqueue("obs.process_broken", "gone")
    assert (await handle.wait(60)).state == State.FAILED
    [error] = await logged(caplog, f"task obs.process_broken {handle.id} failed")
    assert "KeyError: 'gone'" in error.getMessage()
    assert "raise KeyError(message)" in error.getMessage()  # the child's traceback text
    assert error.task_id == handle.id  # type: ignore[attr-defined]


async def test_a_json_formatter_shows_the_fields(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    """The setup docs/observability.md shows: python-json-logger on a handler."""
    caplog.set_level(logging.INFO)
    handle = await tasks.enqueue("obs.thread", "json")
    await handle.result(10)
    [record] = by_message(caplog, "body says json")
    line = json.loads(JsonFormatter("%(levelname)s %(name)s %(message)s").format(record))
    assert line["message"] == "thread body says json"
    assert {k: line[k] for k in FIELDS} == {
        "task_id": handle.id,
        "task_name": "obs.thread",
        "task_queue": "default",
        "task_attempt": 1,
    }
