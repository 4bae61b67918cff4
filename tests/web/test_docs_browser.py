"""The ``/docs`` page works without internet: Swagger UI's files come from this server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.web.browser import CHROMIUM, FLAGS, require_chromium
from tests.web.server import hypercorn

pytestmark = pytest.mark.slow


async def test_docs_page_lists_the_operations_with_only_local_requests(tmp_path: Path) -> None:
    require_chromium()
    from playwright.async_api import Route, async_playwright, expect

    with hypercorn(tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            spec = (await api.get("/openapi.json")).json()
        operations = [(m, p) for p, item in spec["paths"].items() for m in item]
        assert ("post", "/tasks") in operations

        refused: list[str] = []

        async def offline(route: Route) -> None:
            # The machine is taken off the internet: only this server answers.
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                await route.continue_()
            else:
                refused.append(route.request.url)
                await route.abort("internetdisconnected")

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            try:
                page = await browser.new_page()
                await page.route("**/*", offline)
                await page.goto(f"{server.url}/docs")
                blocks = page.locator(".opblock")
                await expect(blocks).to_have_count(len(operations), timeout=20_000)
                enqueue = page.locator('.opblock-post .opblock-summary-path[data-path="/tasks"]')
                await expect(enqueue).to_be_visible()
                shown = await page.locator(".opblock-summary-path").evaluate_all(
                    "nodes => nodes.map(node => node.dataset.path)"
                )
            finally:
                await browser.close()
        assert sorted(shown) == sorted(path for _, path in operations)
        assert refused == []
