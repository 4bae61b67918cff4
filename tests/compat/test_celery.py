"""Celery-style tasks through sync (Flask-style) and async views, on Quart's test client."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart

from tasks import InvalidArgumentsError, State, TaskRecord
from tasks.compat import BlockingCallError, RemoteTaskError, TaskRevokedError
from tasks.compat.celery_result import celery_info, celery_state
from tasks.errors import WorkerLostError
from tasks.model import ErrorInfo, Progress
from tests.compat import celery_app
from tests.compat.celery_app import celery, tasks
from tests.conftest import eventually

STYLES = ["sync", "async"]


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Quart]:
    celery_app.gate.clear()
    celery_app.started.clear()
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
    # As in Celery, an exception is not retried unless asked (autoretry_for), although
    # the task keeps attempts for reruns after a lost worker.
    assert (record.attempts, record.max_attempts) == (1, 4)


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


def test_states_and_info_as_celery_gives_them() -> None:
    record = TaskRecord(
        id="t", name="n", queue="default", state=State.QUEUED, args=[], kwargs={}, priority=0,
        attempts=1, max_attempts=3, run_at=0, created_at=0, error=ErrorInfo("ValueError", "x"),
    )  # fmt: skip
    assert celery_state(record) == "RETRY"
    assert repr(celery_info(record)) == "ValueError('x')"
    record.state, record.error, record.lease_owner = State.RUNNING, None, "web-1:4242:ab12cd34"
    assert (celery_state(record), celery_info(record)) == ("PENDING", None)
    assert celery_state(record, track_started=True) == "STARTED"
    assert celery_info(record, track_started=True) == {"pid": 4242, "hostname": "web-1"}
    record.progress = Progress(1, 2, "halfway")  # current_task().progress(), no update_state
    assert (celery_state(record), celery_info(record)) == (
        "PROGRESS",
        {"current": 1, "total": 2, "message": "halfway"},
    )
    record.progress = Progress(1, 2, '{"state":"CRUNCHING","meta":null}')
    assert (celery_state(record, track_started=True), celery_info(record)) == ("CRUNCHING", None)
    record.state, record.error = State.FAILED, ErrorInfo("WorkerLostError", "died")
    assert isinstance(celery_info(record), WorkerLostError)


@pytest.mark.parametrize("style", STYLES)
async def test_seed_progress_view_answers_pending_until_the_first_update(
    app: Quart, style: str
) -> None:
    """Celery reads PENDING from claim to the first update_state (task_track_started off)."""
    task_id = (await (await app.test_client().post(f"/{style}/slow/plain")).get_json())["id"]
    await eventually(lambda: _true(celery_app.started.is_set()))
    assert (await tasks.get(task_id)).state == State.RUNNING
    response = await app.test_client().get(f"/{style}/progress/{task_id}")
    assert response.status_code == 200
    assert await response.get_json() == {
        "state": "PENDING",
        "current": 0,
        "total": 1,
        "status": "Pending...",
    }
    assert (await _status(app, style, task_id))["info"] is None
    celery_app.gate.set()

    async def done() -> dict[str, Any] | None:
        response = await app.test_client().get(f"/{style}/progress/{task_id}")
        assert response.status_code == 200
        body: dict[str, Any] = await response.get_json()
        # Each property read asks the store again, as in Celery: the branch taken
        # and the state shown may straddle the moment the task finished.
        return body if body["state"] == "SUCCESS" and "result" in body else None

    body = await eventually(done)
    assert body == {"state": "SUCCESS", "current": 10, "total": 10, "status": "", "result": 42}


@pytest.mark.parametrize("style", STYLES)
async def test_track_started_reads_started_with_the_worker_as_info(app: Quart, style: str) -> None:
    task_id = (await (await app.test_client().post(f"/{style}/slow/tracked")).get_json())["id"]
    await eventually(lambda: _true(celery_app.started.is_set()))
    body = await _status(app, style, task_id)
    assert (body["state"], body["info"]) == (
        "STARTED",
        {"pid": os.getpid(), "hostname": socket.gethostname()},
    )
    response = await app.test_client().get(f"/{style}/progress/{task_id}")
    assert response.status_code == 200
    assert (await response.get_json())["state"] == "STARTED"


async def test_autoretry_for_retries_only_those_exceptions(app: Quart) -> None:
    retried = await (await celery_app.flaky.adelay(1, "ConnectionError")).aget(timeout=30)
    assert retried == 2
    wrong = await celery_app.flaky.adelay(1, "ValueError")
    with pytest.raises(ValueError, match="ValueError"):
        await wrong.aget(timeout=30)
    assert (await tasks.get(wrong.id)).attempts == 1
    exhausted = await celery_app.flaky.adelay(9, "ConnectionError")
    with pytest.raises(ConnectionError):
        await exhausted.aget(timeout=30)
    record = await tasks.get(exhausted.id)
    assert (record.attempts, record.max_attempts) == (3, 3)  # max_retries=2


async def test_celery_retry_options_are_checked() -> None:
    with pytest.raises(ValueError, match="retry forever"):
        celery.task(max_retries=None)


@pytest.mark.parametrize("style", STYLES)
async def test_a_revoked_bound_task_sees_is_aborted(app: Quart, style: str) -> None:
    celery_app.aborted.clear()
    result = await celery_app.stoppable.adelay()
    await eventually(lambda: _true(celery_app.started.is_set()))
    assert celery_app.stoppable.is_aborted() is False  # outside a run
    body = await (await app.test_client().post(f"/{style}/revoke/{result.id}")).get_json()
    assert body["state"] == "REVOKED"
    await eventually(lambda: _true(celery_app.aborted == [result.id]))
    assert (await tasks.get(result.id)).state == State.CANCELLED


async def test_shutdown_tells_a_bound_task_to_stop_and_requeues_it(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The drain sets is_aborted() at its start; the run that stopped early runs again later."""
    celery_app.started.clear()
    celery_app.aborted.clear()
    caplog.set_level(logging.INFO, logger="tasks")
    app = celery_app.create_app(database_url, TASKS_SHUTDOWN_TIMEOUT=600)
    async with app.test_app():
        result = await celery_app.stoppable.adelay()
        await eventually(lambda: _true(celery_app.started.is_set()))
        async with asyncio.timeout(60):  # far below the 600 s grace: the task stopped itself
            await tasks.shutdown()
    assert celery_app.aborted == [result.id]
    assert "still running at the shutdown deadline" not in caplog.text
    app = celery_app.create_app(database_url, TASKS_WORKERS=False)
    async with app.test_app():
        record = await tasks.get(result.id)
    assert (record.state, record.attempts) == (State.QUEUED, 0)  # not "succeeded"


async def test_seed_signup_view_ported_to_async(app: Quart) -> None:
    response = await app.test_client().post("/async/signup", form={"email": "ann@example.org"})
    assert response.status_code == 202
    page = (await response.get_data()).decode()
    assert page.startswith("Welcome ann@example.org, mail task ")
    task_id = page.rsplit(" ", 1)[1]
    assert await celery.AsyncResult(task_id).aget(timeout=10) == len("ann@example.org")


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def _true(value: bool) -> bool:
    return value


async def _callbacks_for(task_id: str) -> bool:
    return any(c[1] == task_id for c in celery_app.callbacks)
