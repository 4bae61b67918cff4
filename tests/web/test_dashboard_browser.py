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
