"""Make the dashboard screenshots in docs/images/ (list, detail, queues, workers, workflow).

    .venv/bin/python docs/screenshots.py [--chromium /usr/bin/chromium]

Starts the reference app (``asgi:app``) under Hypercorn on a temporary SQLite
file, enqueues a mix of demo tasks in three queues, uploads a few files to the
side server and starts the uploads manifest (a chord), and saves one PNG per
page from headless Chromium (Playwright). Not a test: it asserts nothing.

The workers page reads ``GET /tasks/workers``. When the server has no worker
registry (404), the script answers that one request in the browser with sample
workers, so that the picture shows the populated page; with a registry it shows
the real one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
WIDTH, HEIGHT = 1400, 860


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server at {url} did not get ready in {timeout} s")


def enqueue(api: httpx.Client, name: str, *args: Any, **options: Any) -> str:
    response = api.post("/tasks", json={"name": name, "args": list(args), **options})
    response.raise_for_status()
    task_id: str = response.json()["id"]
    return task_id


def sample_workers() -> dict[str, Any]:
    now = time.time()

    def at(ago: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - ago))

    def worker(n: int, host: str, queues: list[str], running: int, lost: bool = False) -> Any:
        return {
            "id": f"{host}-{4100 + n}-{n:04x}",
            "host": host,
            "pid": 4100 + n,
            "version": "0.9.0",
            "queues": queues,
            "concurrency": 8,
            "started_at": at(5400 + 600 * n),
            "heartbeat_at": at(95 if lost else 2 + n),
            "running": [f"{n:02x}" * 16 for _ in range(running)],
            "status": "lost" if lost else "alive",
        }

    return {
        "workers": [
            worker(1, "web-1", ["default"], 3),
            worker(2, "web-2", ["default"], 2),
            worker(3, "batch-1", ["reports", "mail"], 5),
            worker(4, "batch-2", ["reports", "mail"], 0, lost=True),
        ]
    }


def history(url: str, seconds: float) -> None:
    """Waves of short tasks for ``seconds``, so that the chart has some past to show."""
    waves = int(seconds // 5)
    with httpx.Client(base_url=url, timeout=30) as api:
        for wave in range(waves):
            for n in range(4 + (wave * 7) % 11):
                enqueue(api, "demo.progress", 3, 0.1 * (n % 4))
            if wave % 3 == 1:
                enqueue(api, "demo.fail", f"upstream timeout (wave {wave})")
            time.sleep(5)  # pacing the waves, not waiting for anything


def populate(url: str) -> tuple[str, str]:
    """Tasks in every state; return (a failed task's id, a running task's id)."""
    with httpx.Client(base_url=url, timeout=30) as api:
        for n in range(14):
            enqueue(api, "demo.echo", {"order": 1000 + n, "items": n % 4 + 1})
        for n in range(4):
            enqueue(api, "demo.echo", {"to": f"user{n}@example.com"}, queue="mail")
        failed = enqueue(api, "demo.fail", "payment gateway answered 502 Bad Gateway")
        enqueue(api, "demo.fail", "report template missing: quarterly.html")
        running = enqueue(api, "demo.progress", 40, 0.5)
        for steps in (30, 25, 20):
            enqueue(api, "demo.progress", steps, 0.6)
        enqueue(api, "demo.sleep", 30)
        for n in range(3):
            enqueue(api, "demo.echo", {"report": f"weekly-{n}"}, queue="reports", delay=600 + n)
        enqueue(api, "demo.echo", {"late": True}, delay=120)
        cancel = enqueue(api, "demo.sleep", 30, delay=60)
        api.post(f"/tasks/{cancel}/cancel").raise_for_status()
    return failed, running


def manifest(url: str, side_port: int) -> str:
    """Upload a few files to the side server, start the manifest chord; its workflow id."""
    for n in range(6):
        data = os.urandom(20_000 + 5_000 * n)
        with socket.create_connection(("127.0.0.1", side_port), timeout=30) as sock:
            sock.sendall(f"scan-{n}.pdf {len(data)}\n".encode() + data)
            sock.recv(200)
    with httpx.Client(base_url=url, timeout=30) as api:
        response = api.post("/uploads/manifest")
        response.raise_for_status()
        workflow: str = response.json()["workflow"]
        return workflow


async def shoot(url: str, chromium: str, failed: str, running: str, side_port: int) -> None:
    from playwright.async_api import Route, async_playwright

    async def fake_workers(route: Route) -> None:
        # Only when this server has no registry: see the module docstring.
        response = await route.fetch()
        if response.status == 404:
            await route.fulfill(json=sample_workers())
        else:
            await route.fulfill(response=response)

    IMAGES.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(
                viewport={"width": WIDTH, "height": HEIGHT}, bypass_csp=True
            )
            await page.route("**/tasks/workers", fake_workers)
            await page.goto(f"{url}/tasks/dashboard")
            await page.wait_for_function(
                "document.querySelectorAll('tr[data-state=running] progress').length >= 2"
                " && [...document.querySelectorAll('tr[data-state=running] progress')]"
                ".some(p => p.value > 20)",
                timeout=90_000,
            )
            await page.screenshot(path=str(IMAGES / "dashboard-list.png"))
            await page.goto(f"{url}/tasks/dashboard/task/{failed}")
            await page.locator(".traceback").first.wait_for(timeout=10_000)
            await page.screenshot(path=str(IMAGES / "dashboard-task.png"), full_page=True)
            await page.goto(f"{url}/tasks/dashboard/queues")
            await page.locator("#chart svg").wait_for(timeout=10_000)
            await page.locator("#queues tr.queue").first.wait_for(timeout=10_000)
            await page.screenshot(path=str(IMAGES / "dashboard-queues.png"))
            await page.goto(f"{url}/tasks/dashboard/workers")
            await page.locator("#workers tr.worker").first.wait_for(timeout=10_000)
            await page.screenshot(path=str(IMAGES / "dashboard-workers.png"))
            workflow = manifest(url, side_port)  # after the list, so that it shows the demo mix
            await page.goto(f"{url}/tasks/dashboard/workflow/{workflow}")
            await page.get_by_text("Workflow succeeded").wait_for(timeout=60_000)
            await page.screenshot(path=str(IMAGES / "dashboard-workflow.png"))
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument(
        "--history", type=float, default=60, help="seconds of task waves before the pictures"
    )
    options = parser.parse_args()
    port, side_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "TASKS_DATABASE_URL": f"sqlite:///{Path(tmp) / 'tasks.sqlite3'}",
            "APP_INSTANCE_PATH": tmp,
            "SIDE_SERVER_PORT": str(side_port),
            "TASKS_QUEUES": "default,mail,reports",
        }
        hypercorn = Path(sys.executable).with_name("hypercorn")
        server = subprocess.Popen(
            [str(hypercorn), "--bind", f"127.0.0.1:{port}", "asgi:app"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(url)
            history(url, options.history)
            failed, running = populate(url)
            asyncio.run(shoot(url, options.chromium, failed, running, side_port))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps(sorted(p.name for p in IMAGES.glob("dashboard-*.png"))))


if __name__ == "__main__":
    main()
