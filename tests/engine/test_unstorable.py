"""A task whose result cannot be stored fails, once, with an error that says why.

Retrying would run the body again for the same unstorable value; before this
was caught, the result failed the whole group-commit batch it shared, and the
task looped until it ended as "worker lost".
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from quart import Quart

from tasks import State
from tests.engine import sample_app


@pytest.fixture
async def app(backend_url: str) -> AsyncIterator[Quart]:
    app = sample_app.create_app(backend_url)
    async with app.test_app():
        yield app


@pytest.mark.parametrize("task", ["surrogate_result", "process_surrogate_result"])
async def test_an_unstorable_result_fails_the_task_without_retries(app: Quart, task: str) -> None:
    sample_app.calls.clear()
    bad = await sample_app.tasks.enqueue(task)
    good = await sample_app.add.enqueue(1, 2)
    record = await bad.wait(30)
    assert (record.state, record.attempts, record.max_attempts) == (State.FAILED, 1, 3)
    assert record.error is not None
    assert record.error.type == "UnstorableResultError"
    assert "the result of task" in record.error.message
    assert "lone surrogate" in record.error.message
    assert await good.result(10) == 3
