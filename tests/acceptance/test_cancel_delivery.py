"""A cancel reaches the process running the task within about a second, on both backends.

A web process (workers off) takes the cancel; a standalone worker runs the
task. Before, the worker learned of it only at its next heartbeat (here 30 s
apart), while the API already said "cancelled" and the body ran on. Now the
task reads ``cancelling`` until the worker has stopped the body and confirmed
``cancelled``, well before the next heartbeat.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.acceptance.conftest import ServerFactory
from tests.acceptance.server import Server, poll
from tests.servers import TasksWorker

pytestmark = pytest.mark.slow

DELIVERED_WITHIN = 8.0
"""Bound on the wait for the body to stop: well under the 30 s heartbeat."""


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str | None:
    """None: the server's own SQLite file."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def worker_holder() -> Iterator[list[TasksWorker]]:
    workers: list[TasksWorker] = []
    yield workers
    for worker in workers:
        worker.kill()


def call(server: Server, method: str, path: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{server.base_url}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_cancel_reaches_the_worker_in_another_process_at_once(
    make_server: ServerFactory, worker_holder: list[TasksWorker], database_url: str | None
) -> None:
    slow_beat = {"TASKS_HEARTBEAT_SECONDS": "30", "TASKS_LEASE_SECONDS": "90"}
    env = {**slow_beat, "TASKS_WORKERS": "false"}
    if database_url is not None:
        env["TASKS_DATABASE_URL"] = database_url
    web = make_server(env=env)
    web.start()
    worker = TasksWorker(
        web.root, name="worker", app=web.app, env={**web.environment(), "TASKS_WORKERS": "true"}
    )
    worker_holder.append(worker)
    worker.start()

    [task_id] = web.enqueue("demo.sleep", [[600]])
    poll(lambda: call(web, "GET", f"/tasks/{task_id}")[1]["state"] == "running", 30, "running")
    status, body = call(web, "POST", f"/tasks/{task_id}/cancel")
    assert status == 202
    assert body["state"] == "cancelling"

    # Confirmed only once the worker has stopped the body.
    poll(
        lambda: call(web, "GET", f"/tasks/{task_id}")[1]["state"] == "cancelled",
        DELIVERED_WITHIN,
        "the worker confirmed the cancel",
    )
    assert f"stopping task {task_id}: it was cancelled" in worker.output()
    status, body = call(web, "POST", f"/tasks/{task_id}/retry")
    assert (status, body["state"]) == (202, "queued")
