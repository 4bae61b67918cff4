"""``GET /tasks/workers``: the serving process in the registry, with the tasks it runs."""

from __future__ import annotations

from typing import Any

from quart import Quart
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks
from tasks.store.fleet import WorkerInfo
from tasks.web.schemas import WorkerList
from tests.conftest import eventually
from tests.store.conftest import make_store


async def test_workers_shows_this_process_alive_and_what_it_runs(
    app: Quart, client: Client
) -> None:
    response = await client.post("/tasks", json={"name": "demo.sleep", "args": [30]})
    task = await response.get_json()

    async def listed() -> Any:
        body = await (await client.get("/tasks/workers")).get_json()
        return body if body["workers"] and body["workers"][0]["running"] else None

    body = await eventually(listed)
    WorkerList.model_validate(body)  # the documented shape, exactly
    [me] = body["workers"]
    rt = tasks.runtime
    assert me["id"] == rt.owner
    assert me["status"] == "alive"
    assert me["running"] == [task["id"]]
    assert me["queues"] == list(rt.config.queues)
    assert me["concurrency"] == rt.config.concurrency
    assert me["started_at"].endswith("Z")
    assert me["heartbeat_at"].endswith("Z")

    other = make_store(tasks.store.url)  # a process that dies: closed, not unregistered
    await other.open()
    await other.register_worker(WorkerInfo("gone:1:ff", "gone", 1, "0", ("default",), 1, 0.0))
    await other.close()
    workers = (await (await client.get("/tasks/workers")).get_json())["workers"]
    assert {w["id"]: w["status"] for w in workers} == {"gone:1:ff": "lost", rt.owner: "alive"}
    assert (await client.post(f"/tasks/{task['id']}/cancel")).status_code == 202
