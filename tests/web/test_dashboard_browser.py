"""The dashboard in headless Chromium (Debian's package, driven by Playwright)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.web.browser import CHROMIUM, FLAGS, require_chromium
from tests.web.server import hypercorn

pytestmark = pytest.mark.slow


async def test_progress_bar_moves_and_cancel_works(tmp_path: Path) -> None:
    require_chromium()
    from playwright.async_api import async_playwright, expect

    # SQLite only: this drives the page in a browser (HTTP layer and JavaScript);
    # the store under it is covered on both backends by the other web tests.
    with hypercorn(tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            sleep = await api.post("/tasks", json={"name": "demo.sleep", "args": [60]})
            sleeper = sleep.json()["id"]
            steps = await api.post("/tasks", json={"name": "demo.progress", "args": [12, 0.4]})
            progress = steps.json()["id"]
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = await browser.new_page()
                await page.goto(f"{server.url}/tasks/dashboard")
                row = page.locator(f'tr[data-task-id="{progress}"]')
                bar = row.locator("progress")
                # The bar moves while the task runs: some value strictly between 0 and 100...
                await page.wait_for_function(
                    "bar => bar.value > 0 && bar.value < 100",
                    arg=await bar.element_handle(),
                    timeout=20_000,
                )
                # ...then reaches 100 % with the task succeeded, all without a reload.
                await expect(row.locator(".state")).to_have_text("succeeded", timeout=30_000)
                assert await bar.evaluate("bar => bar.value") == 100
                await expect(row.locator(".percent")).to_have_text("100%")
                # The result excerpt arrives with the terminal event's summary.
                await expect(row.locator(".result code")).to_have_text('"12 steps done"')

                other = page.locator(f'tr[data-task-id="{sleeper}"]')
                await expect(other.locator(".state")).to_have_text("running", timeout=20_000)
                await other.locator("button.cancel").click()
                await expect(other.locator(".state")).to_have_text("cancelled", timeout=20_000)
                await expect(other.locator("button.retry")).to_be_enabled()
            finally:
                await browser.close()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            assert (await api.get(f"/tasks/{sleeper}")).json()["state"] == "cancelled"
            assert (await api.get(f"/tasks/{progress}")).json()["result"] == "12 steps done"


async def test_a_cancel_reply_overtaken_by_the_stream_does_not_undo_it(tmp_path: Path) -> None:
    # The reply to the cancel POST says "cancelling"; the page's stream may deliver
    # "cancelled" first. The older reply must not put the row back to "cancelling"
    # (it did: the row stayed there with Retry disabled, as no newer event came).
    require_chromium()
    from playwright.async_api import Route, async_playwright, expect

    with hypercorn(tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            sleep = await api.post("/tasks", json={"name": "demo.sleep", "args": [60]})
            sleeper = sleep.json()["id"]
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = await browser.new_page()
                row = page.locator(f'tr[data-task-id="{sleeper}"]')

                async def reply_late(route: Route) -> None:
                    answer = await route.fetch()  # the server cancels now
                    reply = await answer.json()
                    if reply["state"] == "cancelled":  # the reply as computed a moment earlier
                        reply["state"], reply["version"] = "cancelling", reply["version"] - 1
                    assert reply["state"] == "cancelling"
                    await expect(row.locator(".state")).to_have_text("cancelled", timeout=20_000)
                    await route.fulfill(status=answer.status, json=reply)  # the older reply lands

                await page.route("**/cancel", reply_late)
                await page.goto(f"{server.url}/tasks/dashboard")
                await expect(row.locator(".state")).to_have_text("running", timeout=20_000)
                await row.locator("button.cancel").click()
                await expect(row.locator("button.retry")).to_be_enabled(timeout=20_000)
                await expect(row.locator(".state")).to_have_text("cancelled")
            finally:
                await browser.close()
