"""The dashboard under attack, in headless Chromium: hostile task text and forged requests."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest

from tests.servers import Hypercorn, free_port, serving
from tests.web.test_dashboard_browser import CHROMIUM, FLAGS, require_chromium

if TYPE_CHECKING:
    from playwright.async_api import Route

pytestmark = pytest.mark.slow

# Each part bumps window.__pwned if the browser ever runs it.
PAYLOAD = (
    '<img src=x onerror="window.__pwned=(window.__pwned||0)+1">'
    "<script>window.__pwned=(window.__pwned||0)+1</script>"
    '"><svg onload="window.__pwned=(window.__pwned||0)+1">'
)
TOKEN = "dash-s3cret"


@contextmanager
def hostile_server(tmp_path: Path, **env: str) -> Iterator[Hypercorn]:
    """``tests.web.hostile_app:app`` on a SQLite file in ``tmp_path``."""
    environ = {
        "TASKS_DATABASE_URL": f"sqlite:///{tmp_path / 'tasks.sqlite3'}",
        "APP_INSTANCE_PATH": str(tmp_path),
        "SIDE_SERVER_ENABLED": "false",
        "TASKS_PROCESSES": "1",
        **env,
    }
    server = Hypercorn(tmp_path, env=environ, app="tests.web.hostile_app:app", ready_path="/readyz")
    with serving(server):
        yield server


async def post(api: httpx.AsyncClient, name: str, *args: Any, **options: Any) -> str:
    response = await api.post("/tasks", json={"name": name, "args": list(args), **options})
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


async def assert_not_run(page: Any) -> None:
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("td img, td svg, td script").count() == 0


async def test_task_text_never_runs_in_the_dashboard(tmp_path: Path) -> None:
    require_chromium()
    from playwright.async_api import async_playwright, expect

    with hostile_server(tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            failed = await post(api, "demo.fail", PAYLOAD)
            echoed = await post(api, "demo.echo", PAYLOAD)
            reporting = await post(api, "hostile.report", PAYLOAD)
            # Still queued when the page loads: their text arrives over the live stream.
            later_failure = await post(api, "demo.fail", PAYLOAD, delay=3)
            later_report = await post(api, "hostile.report", PAYLOAD, delay=3)
            for task_id in (failed, echoed):
                await api.get(f"/tasks/{task_id}")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = await browser.new_page()
                dialogs: list[str] = []
                page.on("dialog", lambda dialog: dialogs.append(dialog.message))
                await page.goto(f"{server.url}/tasks/dashboard")
                for task_id in (failed, reporting, later_failure, later_report):
                    message = page.locator(f'tr[data-task-id="{task_id}"] .message')
                    # Shown as the literal text, never as markup.
                    await expect(message).to_have_text(PAYLOAD, timeout=30_000)
                await assert_not_run(page)

                await page.goto(f"{server.url}/tasks/{echoed}")  # the result, as the API's JSON
                shown = json.loads(await page.locator("body").inner_text())
                assert shown["result"] == PAYLOAD
                assert await page.evaluate("window.__pwned") is None

                for query in (f"name={quote(PAYLOAD)}", f"state={quote(PAYLOAD)}"):
                    await page.goto(f"{server.url}/tasks/dashboard?{query}")
                    await expect(page.locator("header .brand")).to_have_text("Tasks")
                    await assert_not_run(page)
                assert await page.locator('input[name="name"]').input_value() == ""
                await page.goto(f"{server.url}/tasks/dashboard?name={quote(PAYLOAD)}")
                assert await page.locator('input[name="name"]').input_value() == PAYLOAD
                await assert_not_run(page)
                assert dialogs == []
            finally:
                await browser.close()


def attacker_page(target: str) -> str:
    """A page of another origin that submits a form to ``target`` as soon as it loads."""
    return (
        f'<form id="f" method="post" action="{target}" enctype="text/plain">'
        '<input name="x" value="1"></form><script>document.getElementById("f").submit()</script>'
    )


def serve(html: str) -> Callable[[Route], Awaitable[None]]:
    """A route handler answering every request with ``html``."""

    async def fulfil(route: Route) -> None:
        await route.fulfill(body=html, content_type="text/html")

    return fulfil


@pytest.mark.parametrize("token", [None, TOKEN], ids=["no-token", "cookie-token"])
async def test_another_site_cannot_cancel_tasks(tmp_path: Path, token: str | None) -> None:
    require_chromium()
    from playwright.async_api import async_playwright

    env = {"TASKS_API_TOKEN": token} if token else {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with hostile_server(tmp_path, **env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30, headers=headers) as api:
            victims = [await post(api, "demo.sleep", 60) for _ in range(2)]
            # One attacker on another site, one on this host's other port (same site:
            # a SameSite=Strict cookie still goes along there).
            attackers = ["http://attacker.test/", f"http://127.0.0.1:{free_port()}/"]
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                try:
                    context = await browser.new_context()
                    if token:  # the victim opened the dashboard: the cookie is set
                        page = await context.new_page()
                        await page.goto(f"{server.url}/tasks/dashboard?token={token}")
                        cookies = await context.cookies(server.url + "/tasks")
                        assert [c["name"] for c in cookies] == ["tasks_token"]
                    for attacker, victim in zip(attackers, victims, strict=True):
                        target = f"{server.url}/tasks/{victim}/cancel"
                        await context.route(f"{attacker}**", serve(attacker_page(target)))
                        page = await context.new_page()
                        async with page.expect_response(target, timeout=20_000) as answer:
                            await page.goto(attacker)
                        status = (await answer.value).status
                        assert status in (401, 403), (attacker, status)
                finally:
                    await browser.close()
            for victim in victims:
                assert (await api.get(f"/tasks/{victim}")).json()["state"] in ("queued", "running")
            # The dashboard's own buttons and plain programs still can.
            cancelled = await api.post(f"/tasks/{victims[0]}/cancel")
            assert cancelled.status_code == 202
