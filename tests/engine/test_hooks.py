"""Lifecycle hooks: when each runs, with what, sync or async, and a failing hook."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from quart import Quart

from tasks import State, TaskRecord
from tasks.hooks import RunOutcome
from tasks.logs import current_fields
from tests.conftest import eventually
from tests.engine import observed_app
from tests.engine.observed_app import tasks

seen: list[tuple[str, str, Any]] = []


@pytest.fixture
def hooks() -> Iterator[None]:
    """Register one hook of each kind (sync and async), remove them afterwards."""

    def on_enqueue(record: TaskRecord) -> None:
        seen.append(("on_enqueue", record.id, record.state))

    async def before_run(record: TaskRecord) -> None:
        fields = current_fields()
        seen.append(("before_run", record.id, fields.task_id if fields else None))

    def after_run(record: TaskRecord, outcome: RunOutcome) -> None:
        seen.append(("after_run", record.id, (outcome.outcome, outcome.state)))

    async def on_failure(record: TaskRecord, outcome: RunOutcome) -> None:
        assert outcome.error is not None
        seen.append(("on_failure", record.id, (outcome.error.type, outcome.exception)))

    added = [
        ("on_enqueue", tasks.on_enqueue(on_enqueue)),
        ("before_run", tasks.before_run(before_run)),
        ("after_run", tasks.after_run(after_run)),
        ("on_failure", tasks.on_failure(on_failure)),
    ]
    seen.clear()
    yield
    for name, fn in added:
        tasks.hooks.remove(name, fn)  # type: ignore[arg-type]


@pytest.fixture
async def app(backend_url: str, hooks: None) -> AsyncIterator[Quart]:
    app = observed_app.create_app(backend_url, shutdown_timeout=2)
    async with app.test_app():
        yield app


def of(task_id: str) -> list[tuple[str, Any]]:
    return [(kind, detail) for kind, tid, detail in seen if tid == task_id]


async def hooked(task_id: str, count: int) -> list[tuple[str, Any]]:
    """The hooks seen for ``task_id`` once there are ``count`` (``after_run`` follows the commit
    that ``wait()`` and ``result()`` see, so it may come a moment later)."""

    async def enough() -> list[tuple[str, Any]] | None:
        calls = of(task_id)
        return calls if len(calls) >= count else None

    found: list[tuple[str, Any]] = await eventually(enough)
    return found


async def test_hooks_of_a_success(app: Quart) -> None:
    handle = await tasks.enqueue("obs.async", "x")
    await handle.result(10)
    assert await hooked(handle.id, 3) == [
        ("on_enqueue", State.QUEUED),
        ("before_run", handle.id),  # inside the task's log fields
        ("after_run", ("succeeded", State.SUCCEEDED)),
    ]


async def test_hooks_of_a_retry_then_success_and_of_a_failure(app: Quart) -> None:
    flaky = await tasks.enqueue("obs.flaky", uuid.uuid4().hex)
    await flaky.result(10)
    assert await hooked(flaky.id, 5) == [
        ("on_enqueue", State.QUEUED),
        ("before_run", flaky.id),
        ("after_run", ("retried", State.QUEUED)),
        ("before_run", flaky.id),
        ("after_run", ("succeeded", State.SUCCEEDED)),
    ]
    broken = await tasks.enqueue("obs.broken", "no")
    assert (await broken.wait(10)).state == State.FAILED
    calls = await hooked(broken.id, 4)
    [(_, (error_type, exception))] = [e for e in calls if e[0] == "on_failure"]
    assert error_type == "ValueError"
    assert isinstance(exception, ValueError)
    assert [kind for kind, _ in calls][-2:] == ["after_run", "on_failure"]


async def test_no_hook_for_a_key_that_matched(app: Quart) -> None:
    first = await tasks.get_task("obs.async").options(idempotency_key="once").enqueue("a")
    again = await tasks.get_task("obs.async").options(idempotency_key="once").enqueue("a")
    assert again.id == first.id
    assert [kind for kind, _ in of(first.id)].count("on_enqueue") == 1


async def test_a_failing_hook_is_logged_and_the_task_goes_on(
    app: Quart, caplog: pytest.LogCaptureFixture
) -> None:
    def bad_before(record: TaskRecord) -> None:
        raise RuntimeError("hook bug")

    async def bad_after(record: TaskRecord, outcome: RunOutcome) -> None:
        raise LookupError("async hook bug")

    tasks.before_run(bad_before)
    tasks.after_run(bad_after)
    caplog.set_level(logging.ERROR, logger="tasks")
    try:
        handle = await tasks.enqueue("obs.async", "still runs")
        assert await handle.result(10) == "still runs"
        record = await tasks.get(handle.id)
        assert record.state == State.SUCCEEDED
        assert record.attempts == 1
        calls = await hooked(handle.id, 3)
        await eventually(lambda: _true(len(caplog.records) >= 2))
    finally:
        tasks.hooks.remove("before_run", bad_before)
        tasks.hooks.remove("after_run", bad_after)
    messages = [r.getMessage() for r in caplog.records]
    assert (
        f"before_run hook {bad_before.__qualname__} failed for task obs.async {handle.id}"
        in (messages[0])
    )
    assert any("after_run hook" in m and handle.id in m for m in messages)
    assert "RuntimeError: hook bug" in caplog.text
    assert "LookupError" in caplog.text
    # The other hooks still ran.
    assert [kind for kind, _ in calls] == ["on_enqueue", "before_run", "after_run"]


async def _true(value: bool) -> bool:
    return value


def test_bad_registrations_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown hook 'on_start'; the hooks are on_enqueue"):
        tasks.hooks.add("on_start", print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be callable"):
        tasks.hooks.add("after_run", "print")  # type: ignore[type-var]


async def test_a_cancel_during_a_before_run_hook_ends_the_task_cancelled(app: Quart) -> None:
    entered, gate = asyncio.Event(), asyncio.Event()

    async def stuck(record: TaskRecord) -> None:
        entered.set()
        await gate.wait()

    tasks.before_run(stuck)
    try:
        handle = await tasks.enqueue("obs.async", "never runs")
        await asyncio.wait_for(entered.wait(), 10)
        await tasks.cancel(handle.id)
        record = await handle.wait(10)
        assert record.state == State.CANCELLED
    finally:
        tasks.hooks.remove("before_run", stuck)
        gate.set()
