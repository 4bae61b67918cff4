"""GET /tasks, /tasks/<id>, stats, cancel, retry, probes, metrics, OpenAPI, dashboard."""

from __future__ import annotations

from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks
from tests.conftest import eventually

MISSING = "0" * 32


async def enqueue(client: Client, name: str, *args: Any, **options: Any) -> dict[str, Any]:
    response = await client.post("/tasks", json={"name": name, "args": list(args), **options})
    assert response.status_code == 202, await response.get_data(as_text=True)
    task: dict[str, Any] = await response.get_json()
    return task


async def until_state(client: Client, task_id: str, *states: str) -> dict[str, Any]:
    async def check() -> Any:
        task = await (await client.get(f"/tasks/{task_id}")).get_json()
        return task if task["state"] in states else None

    result: dict[str, Any] = await eventually(check)
    return result


async def test_get_unknown_task_is_404(client: Client) -> None:
    for task_id in (MISSING, "not-an-id"):
        response = await client.get(f"/tasks/{task_id}")
        assert response.status_code == 404
        assert (await response.get_json())["error"]["code"] == "task_not_found"


async def test_failed_task_shows_its_error(client: Client) -> None:
    task = await enqueue(client, "demo.fail", "boom")
    failed = await until_state(client, task["id"], "failed")
    assert failed["error"]["type"] == "RuntimeError"
    assert failed["error"]["message"] == "boom"
    assert "Traceback" in failed["error"]["traceback"]
    assert failed["attempts"] == failed["max_attempts"] == 1


async def test_a_task_shows_every_attempts_error_and_listings_do_not(client: Client) -> None:
    task = await enqueue(client, "demo.fail", "boom", max_attempts=2)
    failed = await until_state(client, task["id"], "failed")
    errors = failed["errors"]
    assert [(e["type"], e["message"], e["attempt"]) for e in errors] == [
        ("RuntimeError", "boom", 1),
        ("RuntimeError", "boom", 2),
    ]
    assert all("Traceback" in e["traceback"] and e["at"].endswith("Z") for e in errors)
    assert errors[0]["at"] <= errors[1]["at"]
    latest = {key: errors[-1][key] for key in ("type", "message", "traceback")}
    assert failed["error"] == latest
    assert (failed["snoozes"], failed["timeout"]) == (0, None)
    listed = await (await client.get("/tasks", query_string={"name": "demo.fail"})).get_json()
    assert [t["id"] for t in listed["tasks"]] == [task["id"]]
    assert "errors" not in listed["tasks"][0]


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_list_pages_newest_first_with_filters(client: Client, unchanged: Any) -> None:
    ids = [(await enqueue(client, "demo.echo", i))["id"] for i in range(5)]
    other = await enqueue(client, "demo.sleep", 1)
    first = await (await client.get("/tasks?name=demo.echo&limit=2")).get_json()
    assert [t["id"] for t in first["tasks"]] == [ids[4], ids[3]]
    second = await (
        await client.get(f"/tasks?name=demo.echo&limit=2&cursor={first['next_cursor']}")
    ).get_json()
    assert [t["id"] for t in second["tasks"]] == [ids[2], ids[1]]
    third = await (
        await client.get(f"/tasks?name=demo.echo&limit=2&cursor={second['next_cursor']}")
    ).get_json()
    assert [t["id"] for t in third["tasks"]] == [ids[0]]
    assert third["next_cursor"] is None
    queued = await (await client.get("/tasks?state=queued")).get_json()
    assert [t["id"] for t in queued["tasks"]] == [other["id"], *reversed(ids)]
    assert (await (await client.get("/tasks?state=failed")).get_json())["tasks"] == []
    for bad in ("state=done", "limit=0", "limit=1001", "limit=x", "cursor=zz"):
        response = await client.get(f"/tasks?{bad}")
        assert response.status_code == 400, bad
        assert (await response.get_json())["error"]["code"] == "invalid_query"


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_stats_counts_by_state_and_name(client: Client) -> None:
    await enqueue(client, "demo.echo", 1)
    await enqueue(client, "demo.echo", 2)
    cancelled = await enqueue(client, "demo.sleep", 1)
    assert (await client.post(f"/tasks/{cancelled['id']}/cancel")).status_code == 202
    stats = await (await client.get("/tasks/stats")).get_json()
    assert stats["by_state"] == {
        "queued": 2,
        "waiting": 0,
        "running": 0,
        "cancelling": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 1,
    }
    assert stats["by_name"]["demo.echo"]["queued"] == 2
    assert stats["by_name"]["demo.sleep"]["cancelled"] == 1


async def test_cancel_running_then_409(client: Client) -> None:
    task = await enqueue(client, "demo.sleep", 60)
    await until_state(client, task["id"], "running")
    response = await client.post(f"/tasks/{task['id']}/cancel")
    assert response.status_code == 202
    # Running: asked to stop, then cancelled once its run has ended (here, at once).
    assert (await response.get_json())["state"] in ("cancelling", "cancelled")
    await until_state(client, task["id"], "cancelled")
    again = await client.post(f"/tasks/{task['id']}/cancel")
    assert again.status_code == 409
    assert (await again.get_json())["error"]["code"] == "invalid_state"
    assert (await client.post(f"/tasks/{MISSING}/cancel")).status_code == 404


async def test_cancel_finished_is_409(client: Client) -> None:
    task = await enqueue(client, "demo.echo", 1)
    await until_state(client, task["id"], "succeeded")
    response = await client.post(f"/tasks/{task['id']}/cancel")
    assert response.status_code == 409


async def test_retry_failed_requeues_it_and_409_otherwise(client: Client) -> None:
    failed = await enqueue(client, "demo.fail", "again")
    await until_state(client, failed["id"], "failed")
    response = await client.post(f"/tasks/{failed['id']}/retry")
    assert response.status_code == 202
    assert (await response.get_json())["state"] in ("queued", "running", "failed")
    retried = await until_state(client, failed["id"], "failed")
    assert retried["attempts"] == 1
    ok = await enqueue(client, "demo.echo", 1)
    await until_state(client, ok["id"], "succeeded")
    conflict = await client.post(f"/tasks/{ok['id']}/retry")
    assert conflict.status_code == 409
    assert (await client.post(f"/tasks/{MISSING}/retry")).status_code == 404


async def test_health_and_readiness(client: Client) -> None:
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert (await ready.get_json()) == {"status": "ready"}


async def test_metrics_count_by_task_name(client: Client) -> None:
    task = await enqueue(client, "demo.echo", 1)
    await until_state(client, task["id"], "succeeded")
    failed = await enqueue(client, "demo.fail", "x")
    await until_state(client, failed["id"], "failed")

    # The counters follow the events emitted once the store has committed a
    # change, so a reader of the store may see the state a moment earlier.
    async def counted() -> str | None:
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.content_type.startswith("text/plain")
        text = await response.get_data(as_text=True)
        return text if 'tasks_failed_total{task="demo.fail"} 1.0' in text else None

    text = await eventually(counted)
    assert 'tasks_enqueued_total{task="demo.echo"} 1.0' in text
    assert 'tasks_started_total{task="demo.echo"} 1.0' in text
    assert 'tasks_succeeded_total{task="demo.echo"} 1.0' in text
    assert 'tasks_run_seconds_count{task="demo.echo"} 1.0' in text
    assert 'tasks_queue_wait_seconds_count{task="demo.echo"} 1.0' in text
    assert "tasks_queued 0.0" in text
    assert "tasks_running 0.0" in text


async def test_unknown_paths_and_methods_under_the_prefix_are_json(client: Client) -> None:
    response = await client.delete("/tasks")
    assert response.status_code == 405
    assert (await response.get_json())["error"]["code"] == "method_not_allowed"
    missing = await client.get(f"/tasks/{MISSING}/nothing")
    assert missing.status_code == 404
    assert (await missing.get_json())["error"]["code"] == "not_found"


async def test_openapi_document_and_docs_page(client: Client) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    paths = document["paths"]
    assert set(paths["/tasks"]) == {"get", "post"}
    for path in (
        "/tasks/{task_id}",
        "/tasks/{task_id}/events",
        "/tasks/stats",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert "get" in paths[path], path
    assert "post" in paths["/tasks/{task_id}/cancel"]
    assert "post" in paths["/tasks/{task_id}/retry"]
    post = paths["/tasks"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    # One alternative per HTTP task and way to split its arguments: internal tasks stay out.
    names = {alternative["properties"]["name"]["const"] for alternative in body["anyOf"]}
    assert {"demo.echo", "demo.progress"} <= names
    assert "records.fulfil" not in names
    assert all(alternative["required"][0] == "name" for alternative in body["anyOf"])
    assert {"202", "200", "400", "413", "415", "422", "429", "503"} <= set(post["responses"])
    events = paths["/tasks/{task_id}/events"]["get"]["responses"]["200"]["content"]
    assert list(events) == ["text/event-stream"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "/openapi.json" in await docs.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_dashboard_lists_tasks_with_filters(client: Client) -> None:
    echo = await enqueue(client, "demo.echo", 1)
    sleep = await enqueue(client, "demo.sleep", 1)
    await client.post(f"/tasks/{sleep['id']}/cancel")
    page = await (await client.get("/tasks/dashboard")).get_data(as_text=True)
    assert f'data-task-id="{echo["id"]}"' in page
    assert f'data-task-id="{sleep["id"]}"' in page
    assert 'data-events-url="/tasks/dashboard/events"' in page  # one stream for the page
    assert f'href="/tasks/dashboard/task/{echo["id"]}"' in page
    filtered = await (await client.get("/tasks/dashboard?state=cancelled")).get_data(as_text=True)
    assert f'data-task-id="{sleep["id"]}"' in filtered
    assert echo["id"] not in filtered
    by_name = await (await client.get("/tasks/dashboard?name=demo.echo")).get_data(as_text=True)
    assert echo["id"] in by_name
    assert sleep["id"] not in by_name
    bad = await client.get("/tasks/dashboard?state=bogus")
    assert bad.status_code == 200
    assert "Input should be" in await bad.get_data(as_text=True)
    script = await client.get("/tasks/static/dashboard.js")
    assert script.status_code == 200
    assert "EventSource" in await script.get_data(as_text=True)


async def test_not_serving_gets_503(tmp_path: Any, backend_url: str) -> None:
    from tests.web.conftest import reference_app

    app = reference_app(tmp_path, backend_url)
    async with app.test_app():
        pass
    client = app.test_client()
    response = await client.post("/tasks", json={"name": "demo.echo", "args": [1]})
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    assert (await client.get("/tasks/stats")).status_code == 503
    assert (await client.get("/readyz")).status_code == 503
    assert (await client.get("/metrics")).status_code == 503
    assert tasks.accepting is False
