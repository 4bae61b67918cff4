"""Which tasks ``POST /tasks`` can start: only those registered with ``http=True``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks as app_tasks
from tasks import Tasks
from tasks.compat import CeleryTasks
from tasks.web import TasksWeb

own = Tasks()
celery = CeleryTasks(own)


@own.task(name="plain.default")
async def by_default() -> None:
    raise AssertionError("never started from HTTP")


@own.task(name="plain.opted_in", http=True)
async def opted_in() -> str:
    return "ran"


@celery.task(name="celery.default")
def celery_default() -> None:
    raise AssertionError("never started from HTTP")


@celery.task(name="celery.opted_in", http=True)
def celery_opted_in() -> str:
    return "ran"


@pytest.fixture
async def own_app(backend_url: str) -> AsyncIterator[Quart]:
    app = Quart(__name__)
    app.config["TASKS_DATABASE_URL"] = backend_url
    own.init_app(app)
    TasksWeb(own).init_app(app)
    async with app.test_app():
        yield app


async def start(client: Client, name: str) -> tuple[int, dict[str, Any]]:
    response = await client.post("/tasks", json={"name": name})
    return response.status_code, await response.get_json()


async def test_tasks_are_off_http_unless_they_opt_in(own_app: Quart) -> None:
    client = own_app.test_client()
    for name in ("plain.default", "celery.default"):
        status, body = await start(client, name)
        assert (status, body["error"]["code"]) == (422, "unknown_task"), name
    assert sum((await own.store.count_by_state()).values()) == 0
    for name in ("plain.opted_in", "celery.opted_in"):
        status, body = await start(client, name)
        assert status == 202, body
        assert (await own.wait(body["id"], timeout=10)).result == "ran"


async def test_a_task_off_http_is_answered_like_an_unknown_name(own_app: Quart) -> None:
    client = own_app.test_client()
    hidden = await client.post("/tasks", json={"name": "plain.default"})
    unknown = await client.post("/tasks", json={"name": "plain.missing"})
    assert hidden.status_code == unknown.status_code == 422
    assert dict(hidden.headers) == dict(unknown.headers)
    hidden_body = (await hidden.get_data(as_text=True)).replace("plain.default", "NAME")
    unknown_body = (await unknown.get_data(as_text=True)).replace("plain.missing", "NAME")
    assert hidden_body == unknown_body


async def test_reference_app_exposes_only_its_demo_tasks(client: Client) -> None:
    exposed = {name for name, task in app_tasks.registry.items() if task.http}
    assert exposed == {
        "demo.sleep",
        "demo.blocking_sleep",
        "demo.cpu",
        "demo.fail",
        "demo.progress",
        "demo.echo",
    }
    # The welcome mail can only go out through /signup and its checks.
    status, body = await start(client, "mail.send_welcome")
    assert (status, body["error"]["code"]) == (422, "unknown_task")
    assert (await app_tasks.list(name="mail.send_welcome")).tasks == []
