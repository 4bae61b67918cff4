"""Operations API: ``GET /tasks/queues``, ``GET /tasks/activity``, ``POST /tasks/bulk/retry-failed``
and ``POST /tasks/bulk/purge``, on each backend."""

from __future__ import annotations

import pytest
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks
from tests.conftest import eventually
from tests.web.test_api import enqueue, until_state

PURGE = "/tasks/bulk/purge"


async def test_queues_show_depth_running_age_and_throughput(client: Client) -> None:
    assert (await (await client.get("/tasks/queues")).get_json()) == {"queues": []}
    done = await enqueue(client, "demo.echo", 1)
    await until_state(client, done["id"], "succeeded")
    await enqueue(client, "demo.echo", 2, queue="mail")  # nobody serves "mail": stays queued
    await enqueue(client, "demo.echo", 3, queue="mail", delay=3600)
    running = await enqueue(client, "demo.sleep", 60)
    await until_state(client, running["id"], "running")

    body = await (await client.get("/tasks/queues")).get_json()

    default, mail = body["queues"]
    assert default["queue"] == "default"
    assert (default["queued"], default["running"]) == (0, 1)
    assert default["finished_last_minute"] == 1
    assert default["oldest_queued_age"] is None
    assert mail["queue"] == "mail"
    assert (mail["queued"], mail["running"], mail["finished_last_minute"]) == (2, 0, 0)
    assert 0 <= mail["oldest_queued_age"] < 60  # the due one; the delayed one is not waiting
    assert mail["oldest_run_at"].endswith("Z")
    await client.post(f"/tasks/{running['id']}/cancel")


async def test_activity_counts_finished_tasks_per_bucket(client: Client) -> None:
    ok = await enqueue(client, "demo.echo", 1)
    failed = await enqueue(client, "demo.fail", "no")
    await until_state(client, ok["id"], "succeeded")
    await until_state(client, failed["id"], "failed")

    body = await (await client.get("/tasks/activity?minutes=2&bucket=10")).get_json()

    assert body["bucket_seconds"] == 10
    buckets = body["buckets"]
    assert len(buckets) == 12
    assert buckets == sorted(buckets, key=lambda b: b["start"])
    assert sum(b["finished"] for b in buckets) == 2
    assert sum(b["failed"] for b in buckets) == 1
    busy = [b for b in buckets if b["finished"]]
    assert all(b["latency_mean"] is not None and b["latency_mean"] >= 0 for b in busy)
    quiet = [b for b in buckets if not b["finished"]]
    assert all(b["latency_mean"] is None for b in quiet)
    wide = await (await client.get("/tasks/activity?minutes=1440&bucket=1")).get_json()
    assert wide["bucket_seconds"] == 432  # a day in at most 200 buckets
    assert len(wide["buckets"]) == 200
    assert sum(b["finished"] for b in wide["buckets"]) == 2
    for query in ("bucket=0", "minutes=1441", "minutes=x"):
        response = await client.get(f"/tasks/activity?{query}")
        assert response.status_code == 400, query
        assert (await response.get_json())["error"]["code"] == "invalid_query"


async def test_retry_failed_queues_failed_tasks_again_by_name(client: Client) -> None:
    fails = [await enqueue(client, "demo.fail", f"no {n}") for n in range(3)]
    other = await enqueue(client, "demo.echo", 1)
    for task in fails:
        await until_state(client, task["id"], "failed")
    await until_state(client, other["id"], "succeeded")

    nothing = await client.post("/tasks/bulk/retry-failed", json={"name": "demo.echo"})
    assert nothing.status_code == 202
    assert await nothing.get_json() == {"retried": 0, "more": False}
    response = await client.post("/tasks/bulk/retry-failed", json={"name": "demo.fail"})
    assert response.status_code == 202
    assert await response.get_json() == {"retried": 3, "more": False}

    async def failed_twice() -> bool:
        records = [await tasks.get(t["id"]) for t in fails]
        return all(r.state.value == "failed" and len(r.errors) == 2 for r in records)

    await eventually(failed_twice, timeout=20)  # each ran (and failed) once more


async def test_purge_deletes_finished_tasks_of_the_given_states(client: Client) -> None:
    ok = await enqueue(client, "demo.echo", 1)
    failed = await enqueue(client, "demo.fail", "no")
    await until_state(client, ok["id"], "succeeded")
    await until_state(client, failed["id"], "failed")

    young = {"states": ["succeeded"], "older_than": 3600}
    assert await (await client.post(PURGE, json=young)).get_json() == {"deleted": 0}
    response = await client.post(PURGE, json={"states": ["succeeded"], "older_than": 0})
    assert response.status_code == 200
    assert await response.get_json() == {"deleted": 1}
    assert (await client.get(f"/tasks/{ok['id']}")).status_code == 404
    assert (await client.get(f"/tasks/{failed['id']}")).status_code == 200


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_bad_operation_requests_get_a_clear_4xx(client: Client, unchanged: object) -> None:
    await enqueue(client, "demo.echo", 1)  # something a wrong purge could delete
    cases = [
        ("/tasks/bulk/purge", {"states": ["queued"], "older_than": 0}, 400, "states.0"),
        ("/tasks/bulk/purge", {"states": [], "older_than": 0}, 400, "states"),
        ("/tasks/bulk/purge", {"states": ["failed"]}, 400, "older_than"),
        ("/tasks/bulk/purge", {"states": ["failed"], "older_than": -1}, 400, "older_than"),
        ("/tasks/bulk/retry-failed", {"name": 3}, 400, "name"),
        ("/tasks/bulk/retry-failed", {"bogus": 1}, 400, "bogus"),
        ("/tasks/bulk/retry-failed", [], 400, "JSON object"),
    ]
    for path, body, status, named in cases:
        async with unchanged():  # type: ignore[operator]
            response = await client.post(path, json=body)
        assert response.status_code == status, (path, body)
        assert named in (await response.get_json())["error"]["message"], (path, body)
    plain = await client.post("/tasks/bulk/purge", data="x", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415
    forged = await client.post(
        "/tasks/bulk/purge",
        json={"states": ["succeeded"], "older_than": 0},
        headers={"Origin": "http://attacker.test", "Sec-Fetch-Site": "cross-site"},
    )
    assert forged.status_code == 403
    assert (await forged.get_json())["error"]["code"] == "cross_site_request"
