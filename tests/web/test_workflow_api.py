"""Workflows over HTTP on each backend: ``GET /tasks/workflows/<id>``, its cancel, the
``workflow`` member of ``GET /tasks/<id>``, the workflow page and its stream."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks
from tests.conftest import eventually
from tests.web.test_api import enqueue, until_state
from tests.web.test_dashboard_stream import parse

MISSING = "0" * 32
HOSTILE = "<script>window.__pwned=1</script>"


def demo(name: str) -> Any:
    return tasks.get_task(f"demo.{name}")


async def workflow(client: Client, workflow_id: str) -> dict[str, Any]:
    response = await client.get(f"/tasks/workflows/{workflow_id}")
    assert response.status_code == 200, await response.get_data(as_text=True)
    body: dict[str, Any] = await response.get_json()
    return body


async def test_a_step_shows_its_workflow_and_neighbours(client: Client) -> None:
    plain = await enqueue(client, "demo.echo", 1)
    echo = demo("echo")
    handle = await tasks.chain(echo.call(1), echo.then(), echo.then()).enqueue()
    assert await handle.result(10) == 1
    first, middle, last = handle.step_ids
    shown = await (await client.get(f"/tasks/{middle}")).get_json()
    assert shown["workflow"] == {
        "id": handle.id,
        "parents": [{"id": first, "kind": "needs", "position": 0}],
        "children": [{"id": last, "kind": "needs", "position": 0}],
    }
    assert shown["workflow_id"] == handle.id
    assert (shown["state"], shown["result"]) == ("succeeded", 1)  # the rest as before
    alone = await (await client.get(f"/tasks/{plain['id']}")).get_json()
    assert (alone["workflow"], alone["workflow_id"]) == (None, None)


async def test_a_chord_shows_steps_in_order_with_state_counts_and_edges(client: Client) -> None:
    echo = demo("echo")
    handle = await tasks.chord([echo.call(1), echo.call(2)], echo.then()).enqueue()
    assert await handle.result(10) == [1, 2]
    shown = await workflow(client, handle.id)
    one, two, body = handle.step_ids
    assert (shown["id"], shown["kind"], shown["state"], shown["done"]) == (
        handle.id,
        "chord",
        "succeeded",
        True,
    )
    assert shown["created_at"].endswith("Z")
    assert (shown["result_ids"], shown["result_kind"]) == ([body], "one")
    assert [s["id"] for s in shown["steps"]] == [one, two, body]
    assert [s["parents"] for s in shown["steps"]] == [[], [], [one, two]]
    assert all(s["state"] == "succeeded" and s["error"] is None for s in shown["steps"])
    assert all(s["started_at"] and s["finished_at"] for s in shown["steps"])
    assert shown["counts"]["succeeded"] == 3
    assert sum(shown["counts"].values()) == 3
    assert shown["edges"] == [
        {"parent": one, "child": body, "kind": "needs", "position": 0},
        {"parent": two, "child": body, "kind": "needs", "position": 1},
    ]


async def test_a_failure_in_the_middle_fails_the_workflow(client: Client) -> None:
    echo, fail = demo("echo"), demo("fail")
    steps = [echo.call(1), fail.call("boom"), echo.then(), echo.then()]
    handle = await tasks.chain(*steps).enqueue()
    await handle.wait(10)
    shown = await workflow(client, handle.id)
    assert shown["state"] == "failed"
    assert [s["state"] for s in shown["steps"]] == ["succeeded", "failed", "cancelled", "cancelled"]
    errors = [s["error"] for s in shown["steps"]]
    assert errors[0] is None
    assert errors[1] == {"type": "RuntimeError", "message": "boom"}
    failed_id = handle.step_ids[1]
    for error in errors[2:]:
        assert error["type"] == "DependencyError"
        assert f"step demo.fail ({failed_id}) failed" in error["message"]
    assert (shown["counts"]["succeeded"], shown["counts"]["failed"]) == (1, 1)
    assert shown["counts"]["cancelled"] == 2


async def test_cancel_stops_every_unfinished_step(client: Client) -> None:
    sleep, echo = demo("sleep"), demo("echo")
    handle = await tasks.chain(sleep.call(60), echo.call(1), echo.then()).enqueue()
    await until_state(client, handle.step_ids[0], "running")
    running = await workflow(client, handle.id)
    assert (running["state"], running["done"]) == ("running", False)
    assert [s["state"] for s in running["steps"]] == ["running", "waiting", "waiting"]
    response = await client.post(f"/tasks/workflows/{handle.id}/cancel")
    assert response.status_code == 202
    answer = await response.get_json()
    assert answer["cancelled"] == 3
    assert answer["workflow"]["id"] == handle.id
    assert {s["state"] for s in answer["workflow"]["steps"]} <= {"cancelling", "cancelled"}

    async def ended() -> Any:
        shown = await workflow(client, handle.id)
        return shown if shown["done"] else None

    shown = await eventually(ended)
    assert shown["state"] == "cancelled"
    assert [s["state"] for s in shown["steps"]] == ["cancelled"] * 3
    again = await client.post(f"/tasks/workflows/{handle.id}/cancel")
    assert again.status_code == 202
    assert (await again.get_json())["cancelled"] == 0


async def test_unknown_or_malformed_workflow_ids_are_404(client: Client) -> None:
    for workflow_id in (MISSING, "not-an-id", "F" * 32):
        for method, path in (
            ("GET", f"/tasks/workflows/{workflow_id}"),
            ("POST", f"/tasks/workflows/{workflow_id}/cancel"),
            ("GET", f"/tasks/dashboard/workflow/{workflow_id}/events"),
        ):
            response = await client.open(path, method=method)
            assert response.status_code == 404, (method, path)
            error = (await response.get_json())["error"]
            assert error["code"] == "workflow_not_found", (method, path)
            assert error["message"].startswith("no workflow with id")
        page = await client.get(f"/tasks/dashboard/workflow/{workflow_id}")
        assert page.status_code == 404
        assert "No workflow with id" in await page.get_data(as_text=True)


async def test_workflow_page_lists_steps_escaped_and_the_step_page_links_to_it(
    client: Client,
) -> None:
    echo, fail = demo("echo"), demo("fail")
    handle = await tasks.chain(echo.call(1), fail.call(HOSTILE), echo.then()).enqueue()
    await handle.wait(10)
    response = await client.get(f"/tasks/dashboard/workflow/{handle.id}")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    page = await response.get_data(as_text=True)
    assert HOSTILE not in page
    assert "RuntimeError: &lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert "DependencyError: not run: step demo.fail" in page
    for step_id in handle.step_ids:
        assert f'href="/tasks/dashboard/task/{step_id}"' in page
    assert 'needs <a href="#step-2">#2</a>' in page  # the third line needs the second
    assert "Workflow failed: every step has finished." in page
    step_page = await (await client.get(f"/tasks/dashboard/task/{handle.step_ids[1]}")).get_data(
        as_text=True
    )
    assert f'href="/tasks/dashboard/workflow/{handle.id}"' in step_page
    assert f'href="/tasks/dashboard/task/{handle.step_ids[0]}"' in step_page  # its parent
    assert f'href="/tasks/dashboard/task/{handle.step_ids[2]}"' in step_page  # its child


async def test_workflow_stream_follows_the_steps_and_ends_when_done(client: Client) -> None:
    progress, echo = demo("progress"), demo("echo")
    flow = tasks.chain(progress.call(5, 0.2), echo.call("x")).on_error(echo.then())
    handle = await flow.enqueue()
    async with asyncio.timeout(30):
        response = await client.get(f"/tasks/dashboard/workflow/{handle.id}/events")
        raw = await response.get_data(as_text=True)  # the stream ends with the workflow
    assert response.content_type.startswith("text/event-stream")
    events = parse(raw)
    first, second, on_error = handle.step_ids
    steps = [data for kind, data in events if kind == "step"]
    assert [s["state"] for s in steps if s["id"] == first][-1] == "succeeded"
    assert "waiting" in [s["state"] for s in steps if s["id"] == second]
    assert [s["state"] for s in steps if s["id"] == second][-1] == "succeeded"
    currents = [s["progress"]["current"] for s in steps if s["id"] == first]
    assert any(0 < c < 5 for c in currents), currents  # progress arrived while it ran
    # The error step was not needed: the store dropped it, and the stream said so.
    assert ("removed", {"id": on_error}) in events
    assert [s["id"] for s in (await workflow(client, handle.id))["steps"]] == [first, second]
    states = [data for kind, data in events if kind == "workflow"]
    assert states[0]["state"] == "running"
    assert (states[-1]["state"], states[-1]["done"]) == ("succeeded", True)
    assert events[-1][0] == "workflow"


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_waiting_steps_can_be_listed_and_filtered(client: Client) -> None:
    echo = demo("echo")
    handle = await tasks.chain(echo.call(1), echo.then()).enqueue()
    listed = await (await client.get("/tasks?state=waiting")).get_json()
    assert [t["id"] for t in listed["tasks"]] == [handle.step_ids[1]]
    page = await (await client.get("/tasks/dashboard?state=waiting")).get_data(as_text=True)
    assert '<option value="waiting" selected>' in page
    assert f'data-task-id="{handle.step_ids[1]}"' in page
    assert f'data-task-id="{handle.step_ids[0]}"' not in page


@pytest.mark.parametrize("app_config", [{"TASKS_API_TOKEN": "t0ken", "TASKS_WORKERS": False}])
async def test_workflow_routes_need_the_token_and_cancel_needs_more_than_the_cookie(
    client: Client,
) -> None:
    echo = demo("echo")
    handle = await tasks.chain(echo.call(1), echo.then()).enqueue()
    paths = [
        f"/tasks/workflows/{handle.id}",
        f"/tasks/dashboard/workflow/{handle.id}",
        f"/tasks/dashboard/workflow/{handle.id}/events",
    ]
    for path in paths:
        assert (await client.get(path)).status_code == 401, path
    cancel = f"/tasks/workflows/{handle.id}/cancel"
    assert (await client.post(cancel)).status_code == 401
    assert (await client.get("/tasks/dashboard?token=t0ken")).status_code == 302  # the cookie
    for path in paths[:2]:
        assert (await client.get(path)).status_code == 200, path
    assert (await client.post(cancel)).status_code == 401  # a cookie alone never authorises
    allowed = await client.post(cancel, headers={"X-Tasks-Dashboard": "1"})
    assert allowed.status_code == 202
    assert (await allowed.get_json())["cancelled"] == 2
