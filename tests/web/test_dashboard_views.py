"""Dashboard pages as HTML, on each backend: the task page's facts and links, headers."""

from __future__ import annotations

import pytest
from quart.typing import TestClientProtocol as Client

from app.extensions import tasks
from app.scenarios.mail import send_welcome
from tests.web.test_api import enqueue
from tests.web.test_events import read_until

PAGES = ("/tasks/dashboard", "/tasks/dashboard/queues", "/tasks/dashboard/workers")


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_task_page_shows_delay_schedule_link_and_escaped_arguments(client: Client) -> None:
    task = await enqueue(
        client, "demo.echo", "<b>x</b>", delay=90, idempotency_key="schedule:nightly:1700000000"
    )
    page = await client.get(f"/tasks/dashboard/task/{task['id']}")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'href="/tasks/dashboard/queues#schedule-nightly"' in html
    assert "delayed: due in 1 min" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>x</b>" not in html
    plain = await enqueue(client, "demo.echo", 1)
    html = await (await client.get(f"/tasks/dashboard/task/{plain['id']}")).get_data(as_text=True)
    assert "schedule-link" not in html
    assert "delayed:" not in html


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_every_dashboard_page_keeps_to_its_own_scripts(client: Client) -> None:
    task = await enqueue(client, "demo.echo", 1)
    for path in (
        *PAGES,
        f"/tasks/dashboard/task/{task['id']}",
        f"/tasks/dashboard/task/{'0' * 32}",
    ):
        response = await client.get(path)
        assert response.status_code in (200, 404), path
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy, path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    missing = await client.get(f"/tasks/dashboard/task/{'0' * 32}")
    assert missing.status_code == 404
    assert "No task with id" in await missing.get_data(as_text=True)


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_search_opens_a_task_by_id_or_by_the_prefix_the_list_shows(client: Client) -> None:
    first, second = [(await enqueue(client, "demo.echo", n))["id"] for n in range(2)]
    for text, found in ((second, second), (first[:12], first), (f" {second.upper()} ", second)):
        response = await client.get(f"/tasks/dashboard?id={text}")
        assert response.status_code == 302, text
        assert response.headers["Location"] == f"/tasks/dashboard/task/{found}", text
    for text in ("f" * 12, first[:7], "not-hex", "0" * 32):
        response = await client.get(f"/tasks/dashboard?id={text}")
        assert response.status_code == 200, text
        assert "no task with id" in await response.get_data(as_text=True), text


@pytest.mark.parametrize("app_config", [{"TASKS_API_TOKEN": "t0ken", "TASKS_WORKERS": False}])
async def test_pages_and_stream_need_the_token_and_take_the_dashboard_cookie(
    client: Client,
) -> None:
    paths = (*PAGES[1:], "/tasks/dashboard/events", "/tasks/queues", "/tasks/activity")
    for path in paths:
        assert (await client.get(path)).status_code == 401, path
    login = await client.get("/tasks/dashboard?token=t0ken")
    assert login.status_code == 302  # the token is now the dashboard's cookie
    for path in paths[:2]:
        assert (await client.get(path)).status_code == 200, path
    async with client.request("/tasks/dashboard/events") as connection:
        head = await read_until(connection, lambda text: "event: counts" in text)
        await connection.disconnect()
    assert "event: counts" in head
    bulk = await client.post("/tasks/bulk/purge", json={"states": ["failed"], "older_than": 0})
    assert bulk.status_code == 401  # a cookie alone never authorises a POST
    allowed = await client.post(
        "/tasks/bulk/purge",
        json={"states": ["failed"], "older_than": 0},
        headers={"X-Tasks-Dashboard": "1"},
    )
    assert allowed.status_code == 200


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_task_page_says_why_a_rate_limited_mail_waits(client: Client) -> None:
    # 10 starts fill the welcome mail's window (10/s) for one second; the 11th waits.
    handles = [await send_welcome.enqueue(f"u{n}@example.org", "U") for n in range(11)]
    claimed = await tasks.store.claim("test-owner", ["default"], 20, 30)
    assert len(claimed) == 10
    [waiting] = [h for h in handles if h.id not in {r.id for r in claimed}]
    html = await (await client.get(f"/tasks/dashboard/task/{waiting.id}")).get_data(as_text=True)
    assert "waiting-rate_limit" in html
    assert "10 of 10 allowed starts of &#39;mail.send_welcome&#39; in the last 1 s" in html
    assert "10 per 1 s per <code>mail.send_welcome</code>" in html
