"""Celery-style tasks through sync (Flask-style) and async views, on Quart's test client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart

from tasks import InvalidArgumentsError, State, TaskRecord
from tasks.compat import BlockingCallError, RemoteTaskError, TaskRevokedError
from tasks.compat.celery_result import celery_state
from tasks.model import ErrorInfo, Progress
from tests.compat import celery_app
from tests.compat.celery_app import celery, tasks
from tests.conftest import eventually

STYLES = ["sync", "async"]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Quart]:
    celery_app.gate.clear()
    celery_app.callbacks.clear()
    app = celery_app.create_app(database_url, TASKS_PROGRESS_INTERVAL=0.05)
    async with app.test_app():
        try:
            yield app
        finally:
            celery_app.gate.set()


async def _status(app: Quart, style: str, task_id: str) -> dict[str, Any]:
    response = await app.test_client().get(f"/{style}/status/{task_id}")
    body: dict[str, Any] = await response.get_json()
    return body


@pytest.mark.parametrize("style", STYLES)
async def test_progress_then_success_with_one_callback(app: Quart, style: str) -> None:
    response = await app.test_client().post(f"/{style}/longtask")
    assert response.status_code == 202
    task_id = (await response.get_json())["id"]

    async def at_step_three() -> bool:
        body = await _status(app, style, task_id)
        return bool(body["state"] == "PROGRESS" and body["info"].get("current") == 3)

    await eventually(at_step_three)
    body = await _status(app, style, task_id)  # stable until the gate opens
    assert body["state"] == "PROGRESS"
    assert body["info"] == {"current": 3, "total": 3, "status": "step 3"}
    assert body["ready"] is False
    record = await tasks.get(task_id)
    assert (record.progress.current, record.progress.total) == (3, 3)
    assert json.loads(record.progress.message or "") == {"state": "PROGRESS", "meta": body["info"]}

    celery_app.gate.set()

    async def finished() -> bool:
        return bool((await _status(app, style, task_id))["state"] == "SUCCESS")

    await eventually(finished)
    body = await _status(app, style, task_id)
    expected = {"result": 42, "app": "celery_app", "id": task_id}
    assert (body["state"], body["info"]) == ("SUCCESS", expected)
    await eventually(lambda: _callbacks_for(task_id))
    # A second task's callback arriving shows the first one's would have by now.
    failing = await (await app.test_client().post(f"/{style}/explode")).get_json()
    await eventually(lambda: _callbacks_for(failing["id"]))
    assert celery_app.callbacks.count(("success", task_id, expected)) == 1
    assert [c for c in celery_app.callbacks if c[1] == failing["id"]] == [
        ("failure", failing["id"], "ValueError:boom:celery_app")
    ]


@pytest.mark.parametrize("style", STYLES)
async def test_delay_and_get(app: Quart, style: str) -> None:
    response = await app.test_client().post(f"/{style}/add")
    assert await response.get_json() == {"value": 5}


@pytest.mark.parametrize("style", STYLES)
async def test_failure_state_info_and_get_raises(app: Quart, style: str) -> None:
    body = await (await app.test_client().post(f"/{style}/explode")).get_json()
    assert (body["raised"], body["failed"]) == ("boom", True)
    status = await _status(app, style, body["id"])
    assert (status["state"], status["info"], status["ready"]) == (
        "FAILURE",
        "ValueError: boom",
        True,
    )
    record = await tasks.get(body["id"])
    assert record.attempts == 1  # Celery tasks are not retried unless asked


@pytest.mark.parametrize("style", STYLES)
async def test_countdown_is_pending_then_revoked(app: Quart, style: str) -> None:
    client = app.test_client()
    later = await (await client.post(f"/{style}/later?countdown=60")).get_json()
    assert (later["state"], later["ready"]) == ("PENDING", False)
    record = await tasks.get(later["id"])
    assert record.run_at > record.created_at + 50
    revoked = await (await client.post(f"/{style}/revoke/{later['id']}")).get_json()
    assert (revoked["state"], revoked["ready"]) == ("REVOKED", True)
    with pytest.raises(TaskRevokedError):
        await celery.AsyncResult(later["id"]).aget(timeout=5)


@pytest.mark.parametrize("style", STYLES)
async def test_unknown_id_reads_pending_as_in_celery(app: Quart, style: str) -> None:
    body = await _status(app, style, "no-such-task")
    assert (body["state"], body["info"]) == ("PENDING", None)


async def test_properties_on_the_loop_need_a_refresh(app: Quart) -> None:
    result = await celery_app.add.adelay(1, 1)
    with pytest.raises(BlockingCallError, match="arefresh"):
        _ = result.state
    with pytest.raises(BlockingCallError, match="aapply_async"):
        celery_app.add.delay(1, 1)
    assert await result.aget(timeout=10) == 2
    assert (result.state, result.result, result.successful()) == ("SUCCESS", 2, True)


async def test_apply_async_checks_arguments_and_options(app: Quart) -> None:
    with pytest.raises(InvalidArgumentsError, match="do not fit"):
        await celery_app.add.adelay(1)
    with pytest.raises(InvalidArgumentsError, match="not both"):
        await celery_app.add.aapply_async(args=[1, 2], countdown=1, eta=_now())


async def test_update_state_refuses_outcome_states_and_outside_tasks(app: Quart) -> None:
    result = await celery_app.cheat.adelay()
    with pytest.raises(RemoteTaskError, match="InvalidArgumentsError: SUCCESS is set by"):
        await result.aget(timeout=10)
    with pytest.raises(RuntimeError, match="outside of a running task"):
        celery_app.long_task.update_state(state="PROGRESS", meta={})
    assert celery_app.long_task.request.id is None


def test_queued_after_a_failed_attempt_reads_retry() -> None:
    record = TaskRecord(
        id="t", name="n", queue="default", state=State.QUEUED, args=[], kwargs={}, priority=0,
        attempts=1, max_attempts=3, run_at=0, created_at=0, error=ErrorInfo("ValueError", "x"),
    )  # fmt: skip
    assert celery_state(record) == "RETRY"
    record.state, record.error = State.RUNNING, None
    assert celery_state(record) == "STARTED"
    record.progress = Progress(1, 2, '{"state":"CRUNCHING","meta":null}')
    assert celery_state(record) == "CRUNCHING"


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def _callbacks_for(task_id: str) -> bool:
    return any(c[1] == task_id for c in celery_app.callbacks)
