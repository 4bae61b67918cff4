"""The second dashboard in headless Chromium: one live stream for the list, the task page,
queues and workers views, filters and paging, bulk actions, and hostile task text.

SQLite only: these drive the pages (HTTP layer and JavaScript); what the pages
read is covered on both backends by test_operations.py, test_dashboard_stream.py
and the store contract suite. Every wait is bounded (Playwright timeouts).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.servers import Hypercorn, poll
from tests.web.browser import CHROMIUM, FLAGS, require_chromium
from tests.web.server import hypercorn
from tests.web.test_dashboard_security import PAYLOAD, assert_not_run, hostile_server, post

if TYPE_CHECKING:
    from playwright.async_api import Page, Route

pytestmark = pytest.mark.slow
LONG = 60_000
"""Milliseconds for waits that span task runs on a busy two-core machine."""


@asynccontextmanager
async def browser_page(**context: Any) -> AsyncIterator[Page]:
    """A page in a fresh headless Chromium."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield await (await browser.new_context(**context)).new_page()
        finally:
            await browser.close()


async def until_state(server: Hypercorn, task_id: str, *states: str) -> dict[str, Any]:
    """The task once it is in one of ``states`` (polled with a deadline)."""

    def check() -> dict[str, Any] | None:
        task: dict[str, Any] = httpx.get(f"{server.url}/tasks/{task_id}", timeout=10).json()
        return task if task["state"] in states else None

    return await asyncio.to_thread(poll, check, 60, f"task {task_id} in {states}")


async def test_thirty_unfinished_tasks_update_live_over_one_stream(tmp_path: Path) -> None:
    from playwright.async_api import expect

    with hypercorn(tmp_path, env={"TASKS_CONCURRENCY": "32"}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            ids = [await post(api, "demo.progress", 40, 0.5) for _ in range(30)]
            async with browser_page() as page:
                streams: list[str] = []
                page.on("request", lambda r: streams.append(r.url) if "/events" in r.url else None)
                await page.goto(f"{server.url}/tasks/dashboard")
                rows = [page.locator(f'tr[data-task-id="{i}"]') for i in ids]
                bars = [await row.locator("progress").element_handle() for row in rows]
                # Every one of the 30 bars moves while its task runs, at the same time.
                await page.wait_for_function(
                    "bars => bars.every(b => b.value > 0 && b.value < 100)",
                    arg=bars,
                    timeout=LONG,
                )
                # A task enqueued now appears at the top without a reload.
                fresh = await post(api, "demo.echo", {"hello": "page"})
                row = page.locator(f'tr[data-task-id="{fresh}"]')
                await expect(row.locator(".state")).to_have_text("succeeded", timeout=LONG)
                await expect(row.locator(".result code")).to_have_text('{"hello":"page"}')
                assert (
                    await page.locator("tr[data-task-id]").first.get_attribute("data-task-id")
                    == fresh
                )
                # ...and every one of the 30 ends at 100 % with its result.
                for each in rows:
                    await expect(each.locator(".state")).to_have_text("succeeded", timeout=LONG)
                    await expect(each.locator(".percent")).to_have_text("100%")
                    await expect(each.locator(".result code")).to_have_text('"40 steps done"')
                stored = (await api.get("/tasks/stats")).json()["by_state"]["succeeded"]
                count = page.locator('#counts [data-state="succeeded"] .n')
                await expect(count).to_have_text(str(stored), timeout=LONG)
                assert len(streams) == 1, streams  # one stream for the whole page


async def test_task_page_shows_traceback_attempts_delay_and_follows_the_task(
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    with hypercorn(tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            failed = await post(api, "demo.fail", "kaput", max_attempts=2)
            delayed = await post(api, "demo.echo", [1, 2], delay=600)
            sleeper = await post(api, "demo.sleep", 60)
            steps = await post(api, "demo.progress", 8, 0.4)
        await until_state(server, failed, "failed")
        async with browser_page() as page:
            await page.goto(f"{server.url}/tasks/dashboard/task/{failed}")
            await expect(page.locator(".task-head .state")).to_have_text("failed")
            await expect(page.locator(".error-card .error-message")).to_have_text("kaput")
            traceback = page.locator(".error-card pre.traceback")
            await expect(traceback).to_contain_text("Traceback (most recent call last)")
            await expect(traceback).to_contain_text("RuntimeError: kaput")
            await expect(page.locator("tr.attempt")).to_have_count(2)  # every attempt
            await expect(page.locator(".attempts")).to_have_text("2/2")
            await expect(page.locator("button.retry")).to_be_enabled()

            await page.goto(f"{server.url}/tasks/dashboard/task/{delayed}")
            await expect(page.locator(".timeline")).to_contain_text("delayed: due in")
            await expect(page.locator("pre.args")).to_contain_text("[\n  1,\n  2\n]")

            # Live: the page follows a running task to its end, then shows the result.
            await page.goto(f"{server.url}/tasks/dashboard/task/{steps}")
            await expect(page.locator("pre.result")).to_have_text('"8 steps done"', timeout=LONG)
            await expect(page.locator(".task-head .state")).to_have_text("succeeded")

            await page.goto(f"{server.url}/tasks/dashboard/task/{sleeper}")
            await expect(page.locator(".task-head .state")).to_have_text("running", timeout=LONG)
            await page.locator("button.cancel").click()
            await expect(page.locator(".task-head .state")).to_have_text("cancelled", timeout=LONG)

            # The page reloads itself once the task ends; a fresh tab keeps that
            # reload from interrupting the next navigation.
            other = await page.context.new_page()
            missing = await other.goto(f"{server.url}/tasks/dashboard/task/{'0' * 32}")
            assert missing is not None
            assert missing.status == 404
            await expect(other.locator(".error")).to_contain_text("No task with id")


async def test_task_text_never_runs_in_the_new_pages(tmp_path: Path) -> None:
    from playwright.async_api import expect

    with hostile_server(tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            failed = await post(api, "demo.fail", PAYLOAD)
            echoed = await post(api, "demo.echo", PAYLOAD)
        await until_state(server, failed, "failed")
        await until_state(server, echoed, "succeeded")
        async with browser_page() as page:
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: dialogs.append(dialog.message))
            await page.goto(f"{server.url}/tasks/dashboard/task/{failed}")
            await expect(page.locator(".error-message")).to_have_text(PAYLOAD)
            await expect(page.locator("pre.args")).to_contain_text(PAYLOAD.replace('"', '\\"'))
            await assert_not_run(page)
            assert await page.locator("main img, main svg, main script").count() == 0
            await page.goto(f"{server.url}/tasks/dashboard/task/{echoed}")
            await expect(page.locator("pre.result")).to_contain_text("<script>")
            assert await page.locator("main img, main svg, main script").count() == 0
            await assert_not_run(page)
            # Text arriving over the live stream: a new task with hostile arguments
            # and result, and a task reporting it as its progress message.
            await page.goto(f"{server.url}/tasks/dashboard")
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
                late = await post(api, "demo.echo", PAYLOAD)
                report = await post(api, "hostile.report", PAYLOAD)
            row = page.locator(f'tr[data-task-id="{late}"]')
            await expect(row.locator(".state")).to_have_text("succeeded", timeout=LONG)
            await expect(row.locator(".result code")).to_contain_text("<script>")
            message = page.locator(f'tr[data-task-id="{report}"] .message')
            await expect(message).to_have_text(PAYLOAD, timeout=LONG)
            assert await page.locator("main img, main svg, main script").count() == 0
            await assert_not_run(page)
            assert dialogs == []


async def test_queues_and_workers_views(tmp_path: Path) -> None:
    from playwright.async_api import expect

    with hypercorn(tmp_path) as server:  # workers serve the "default" queue only
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            done = [await post(api, "demo.echo", n) for n in range(4)]
            failed = await post(api, "demo.fail", "no")
            for n in range(2):
                await post(api, "demo.echo", n, queue="mail")
            for task_id in (*done, failed):
                await until_state(server, task_id, "succeeded", "failed")
        async with browser_page() as page:
            await page.goto(f"{server.url}/tasks/dashboard/queues")
            mail = page.locator('#queues tr[data-queue="mail"]')
            await expect(mail.locator(".queued")).to_have_text("2", timeout=LONG)
            await expect(mail.locator(".running")).to_have_text("0")
            await expect(mail.locator(".age")).not_to_have_text("—")
            default = page.locator('#queues tr[data-queue="default"]')
            await expect(default.locator(".throughput")).to_have_text("5")
            chart = page.locator("#chart")
            await expect(chart).to_have_attribute("data-finished", "5", timeout=LONG)
            assert await chart.locator("rect.bar-ok").count() >= 1
            assert await chart.locator("rect.bar-failed").count() >= 1
            assert await chart.locator("circle.latency-dot").count() >= 1

            # The real registry: this server's one worker process, alive, on "default".
            await page.goto(f"{server.url}/tasks/dashboard/workers")
            rows = page.locator("#workers tr.worker")
            await expect(rows).to_have_count(1, timeout=LONG)
            await expect(rows.nth(0).locator(".host")).to_have_text(socket.gethostname())
            await expect(rows.nth(0).locator(".queues")).to_have_text("default")
            await expect(rows.nth(0).locator(".state")).to_have_text("alive")

        # Rows a real registry rarely holds (a lost process, a hostile host name),
        # served to this browser in the shape of GET /tasks/workers: rendering and escaping.
        workers = {
            "workers": [
                fake_worker("web-1", 4242, ["default"], ["a" * 32, "b" * 32], "alive"),
                fake_worker(PAYLOAD, 4243, ["mail", "reports"], [], "lost"),
            ]
        }

        async def fake_registry(route: Route) -> None:
            await route.fulfill(json=workers)

        async with browser_page() as page:
            await page.route("**/tasks/workers", fake_registry)
            await page.goto(f"{server.url}/tasks/dashboard/workers")
            rows = page.locator("#workers tr.worker")
            await expect(rows).to_have_count(2, timeout=LONG)
            first, second = rows.nth(0), rows.nth(1)
            await expect(first.locator(".host")).to_have_text("web-1")
            await expect(first.locator(".running")).to_have_text("2")
            await expect(first.locator(".state")).to_have_text("alive")
            await expect(second.locator(".host")).to_have_text(PAYLOAD)
            await expect(second.locator(".queues")).to_have_text("mail, reports")
            await expect(second.locator(".state")).to_have_text("lost")
            assert await page.evaluate("window.__pwned") is None


def fake_worker(
    host: str, pid: int, queues: list[str], running: list[str], status: str
) -> dict[str, Any]:
    return {
        "id": f"{host}-{pid}",
        "host": host,
        "pid": pid,
        "version": "1.0",
        "queues": queues,
        "concurrency": 8,
        "started_at": "2026-01-01T00:00:00Z",
        "heartbeat_at": "2026-01-01T00:00:05Z",
        "running": running,
        "status": status,
    }


async def test_filters_search_and_paging_both_ways(tmp_path: Path) -> None:
    from playwright.async_api import expect

    with hypercorn(tmp_path, env={"TASKS_WORKERS": "false"}) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            echoes = [await post(api, "demo.echo", n) for n in range(110)]
            mails = [await post(api, "demo.echo", n, queue="mail") for n in range(3)]
            sleeps = [await post(api, "demo.sleep", 1) for _ in range(2)]
        newest_first = (echoes + mails + sleeps)[::-1]

        async def shown(page: Page) -> list[str]:
            ids: list[str] = await page.locator("tr[data-task-id]").evaluate_all(
                "rows => rows.map(r => r.dataset.taskId)"
            )
            return ids

        async with browser_page() as page:
            await page.goto(f"{server.url}/tasks/dashboard")
            assert await shown(page) == newest_first[:50]
            await expect(page.locator(".pager .newer")).to_have_count(0)
            await page.locator(".pager .older").click()
            await expect(page.locator("tr[data-task-id]").first).to_have_attribute(
                "data-task-id", newest_first[50]
            )
            assert await shown(page) == newest_first[50:100]
            await page.locator(".pager .older").click()
            await expect(page.locator("tr[data-task-id]")).to_have_count(15)
            assert await shown(page) == newest_first[100:]
            await expect(page.locator(".pager .older")).to_have_count(0)
            await page.locator(".pager .newer").click()  # back, one page at a time
            await expect(page.locator("tr[data-task-id]").first).to_have_attribute(
                "data-task-id", newest_first[50]
            )
            assert await shown(page) == newest_first[50:100]
            await page.locator(".pager .newer").click()
            await expect(page.locator("tr[data-task-id]").first).to_have_attribute(
                "data-task-id", newest_first[0]
            )
            assert await shown(page) == newest_first[:50]
            await expect(page.locator(".pager .newer")).to_have_count(0)

            await page.locator('input[name="name"]').fill("demo.sleep")
            await page.locator(".filters button[type=submit]").click()
            await expect(page.locator("tr[data-task-id]")).to_have_count(2)
            assert await shown(page) == sleeps[::-1]
            await page.goto(f"{server.url}/tasks/dashboard")
            await page.locator('input[name="queue"]').fill("mail")
            await page.locator(".filters button[type=submit]").click()
            await expect(page.locator("tr[data-task-id]")).to_have_count(3)
            assert await shown(page) == mails[::-1]
            await page.select_option('select[name="state"]', "running")
            await page.locator(".filters button[type=submit]").click()
            await expect(page.locator(".empty-row")).to_be_visible()

            search = page.locator('.search input[name="id"]')
            await search.fill(echoes[7])
            await search.press("Enter")
            await expect(page).to_have_url(f"{server.url}/tasks/dashboard/task/{echoes[7]}")
            await expect(page.locator("pre.args")).to_have_text("[\n  7\n]")
            await page.locator('.search input[name="id"]').fill("f" * 32)
            await page.locator('.search input[name="id"]').press("Enter")
            await expect(page.locator(".error")).to_contain_text("no task with id")


async def test_bulk_retry_and_purge_ask_first(tmp_path: Path) -> None:
    from playwright.async_api import expect

    with hypercorn(tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
            failed = [await post(api, "demo.fail", f"no {n}") for n in range(3)]
            echoed = [await post(api, "demo.echo", n) for n in range(2)]
            for task_id in failed + echoed:
                await until_state(server, task_id, "failed", "succeeded")

            async def errors(task_id: str) -> int:
                return len((await api.get(f"/tasks/{task_id}")).json()["errors"])

            async with browser_page() as page:
                await page.goto(f"{server.url}/tasks/dashboard")
                dialog = page.locator("#confirm-retry")
                await page.locator("#retry-failed").click()
                await expect(dialog).to_be_visible()
                await dialog.locator('button[value="cancel"]').click()
                await expect(dialog).to_be_hidden()
                assert [await errors(t) for t in failed] == [1, 1, 1]  # nothing happened

                await page.locator("#retry-failed").click()
                await dialog.locator(".confirm-ok").click()
                await expect(dialog.locator(".outcome")).to_have_text(
                    "Queued 3 failed task(s) again.", timeout=LONG
                )
                for task_id in failed:  # each ran, and failed, once more
                    await until_state(server, task_id, "failed")
                    assert await errors(task_id) == 2
                await dialog.locator('button[value="cancel"]').click()

                purge = page.locator("#confirm-purge")
                await page.locator("#purge").click()
                await expect(purge).to_be_visible()
                await expect(purge.locator(".warn")).to_contain_text("gone for good")
                await purge.locator('button[value="cancel"]').click()
                await expect(purge).to_be_hidden()
                assert (await api.get("/tasks/stats")).json()["by_state"]["succeeded"] == 2

                await page.locator("#purge").click()
                await purge.locator('input[value="failed"]').check()
                await purge.locator('select[name="older_than"]').select_option("0")
                await purge.locator(".confirm-ok").click()
                await expect(purge.locator(".outcome")).to_have_text(
                    "Deleted 5 task(s).", timeout=LONG
                )
            counts = (await api.get("/tasks/stats")).json()["by_state"]
            assert counts["succeeded"] == 0
            assert counts["failed"] == 0
