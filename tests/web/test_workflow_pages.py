"""The workflow page in headless Chromium: a running chain followed live over one stream,
the way there from a step's task page, its Cancel button, and hostile step text.

SQLite only, like test_dashboard_pages.py: what the page reads is covered on
both backends by test_workflow_api.py. Every wait is bounded (Playwright timeouts).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import Hypercorn, serving
from tests.web.test_dashboard_pages import LONG, browser_page, until_state
from tests.web.test_dashboard_security import PAYLOAD, assert_not_run

pytestmark = pytest.mark.slow


@contextmanager
def workflow_server(tmp_path: Path) -> Iterator[Hypercorn]:
    """``tests.web.workflow_app:app`` on a SQLite file in ``tmp_path``."""
    environ = {
        "TASKS_DATABASE_URL": f"sqlite:///{tmp_path / 'tasks.sqlite3'}",
        "APP_INSTANCE_PATH": str(tmp_path),
        "SIDE_SERVER_ENABLED": "false",
        "TASKS_PROCESSES": "1",
    }
    app = "tests.web.workflow_app:app"
    server = Hypercorn(tmp_path, env=environ, app=app, ready_path="/readyz")
    with serving(server):
        yield server


async def start_chain(server: Hypercorn, *steps: tuple[str, list[Any]]) -> dict[str, Any]:
    """Enqueue ``steps`` (task name, arguments) as one chain: ``{"id", "steps"}``."""
    body = {"steps": [{"name": name, "args": args} for name, args in steps]}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        response = await api.post("/test-workflows/chain", json=body)
    assert response.status_code == 200, response.text
    chain: dict[str, Any] = response.json()
    return chain


async def test_workflow_page_follows_a_running_chain_live(tmp_path: Path) -> None:
    from playwright.async_api import expect

    with workflow_server(tmp_path) as server:
        chain = await start_chain(
            server,
            ("demo.progress", [6, 0.3]),
            ("demo.progress", [6, 0.3]),
            ("demo.echo", ["done"]),
        )
        first, second, third = chain["steps"]
        page_url = f"{server.url}/tasks/dashboard/workflow/{chain['id']}"
        await until_state(server, first, "running")
        async with browser_page() as page:
            streams: list[str] = []
            page.on("request", lambda r: streams.append(r.url) if "/events" in r.url else None)
            await page.goto(page_url)
            await page.evaluate("window.__samePage = true")
            rows = [page.locator(f'tr[data-task-id="{i}"]') for i in chain["steps"]]
            await expect(rows[2].locator(".needs")).to_have_text("needs #2")
            await expect(rows[0].locator(".needs")).to_have_text("—")
            await expect(page.locator(".workflow-head .state")).to_have_text("running")
            # The second step starts after the page loaded: its bar moves, then it ends.
            bar = await rows[1].locator("progress").element_handle()
            await page.wait_for_function(
                "bar => bar.value > 0 && bar.value < 100", arg=bar, timeout=LONG
            )
            for row in rows:
                await expect(row.locator(".state")).to_have_text("succeeded", timeout=LONG)
                await expect(row.locator(".percent")).to_have_text("100%")
            await expect(page.locator(".workflow-head .state")).to_have_text("succeeded")
            await expect(page.locator(".workflow-outcome")).to_have_text(
                "Workflow succeeded: every step has finished."
            )
            await expect(page.locator('.wf-count[data-state="succeeded"] .n')).to_have_text("3")
            await expect(page.locator("button.cancel")).to_be_disabled()
            assert await page.evaluate("window.__samePage") is True  # never reloaded
            assert streams == [f"{page_url}/events"]  # one stream for the page

            # From a step's task page to its workflow.
            await page.goto(f"{server.url}/tasks/dashboard/task/{second}")
            parent = page.locator(".workflow-card .parents a")
            await expect(parent).to_have_attribute("href", f"/tasks/dashboard/task/{first}")
            child = page.locator(".workflow-card .children a")
            await expect(child).to_have_attribute("href", f"/tasks/dashboard/task/{third}")
            await page.locator("a.workflow-link").click()
            await page.wait_for_url(page_url, timeout=LONG)
            await expect(page.locator("#steps tr[data-task-id]")).to_have_count(3)

            # The Cancel button stops every unfinished step of another chain.
            held = await start_chain(server, ("demo.sleep", [60]), ("demo.echo", [1]))
            await until_state(server, held["steps"][0], "running")
            await page.goto(f"{server.url}/tasks/dashboard/workflow/{held['id']}")
            await page.locator("button.cancel").click()
            await expect(page.locator(".action-message")).to_have_text(
                "Cancelled 2 unfinished step(s)."
            )
            for step_id in held["steps"]:
                state = page.locator(f'tr[data-task-id="{step_id}"] .state')
                await expect(state).to_have_text("cancelled", timeout=LONG)
            await expect(page.locator(".workflow-head .state")).to_have_text("cancelled")


async def test_step_text_never_runs_in_the_workflow_page(tmp_path: Path) -> None:
    from playwright.async_api import expect

    with workflow_server(tmp_path) as server:
        chain = await start_chain(
            server,
            ("demo.progress", [4, 0.3]),
            ("demo.fail", [PAYLOAD]),
            ("demo.echo", [1]),
        )
        _, failing, after = chain["steps"]
        async with browser_page() as page:
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            await page.goto(f"{server.url}/tasks/dashboard/workflow/{chain['id']}")
            # First over the live stream (the failure happens after the page loaded)...
            message = page.locator(f'tr[data-task-id="{failing}"] .message')
            await expect(message).to_have_text(f"RuntimeError: {PAYLOAD}", timeout=LONG)
            dependent = page.locator(f'tr[data-task-id="{after}"] .message')
            await expect(dependent).to_have_text(
                f"DependencyError: not run: step demo.fail ({failing}) failed"
            )
            await expect(page.locator(".workflow-head .state")).to_have_text("failed")
            await assert_not_run(page)
            # ...then as the server renders it.
            await page.reload()
            await expect(message).to_have_text(f"RuntimeError: {PAYLOAD}")
            await assert_not_run(page)
            assert await page.locator("main img, main svg, main script").count() == 0
            assert dialogs == []
