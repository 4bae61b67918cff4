"""/metrics under real ``hypercorn -w 3``: one scrape of one port sums every worker.

Tasks run in all three workers (two slots each, tasks that take a while),
while one port is scraped again and again: every counter is non-decreasing
from scrape to scrape, and once the work is done the totals equal the
store's counts, whichever worker answered.
"""

from __future__ import annotations

import itertools
import signal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tasks.web import metric_files
from tests.servers import Hypercorn, poll
from tests.web.server import hypercorn

pytestmark = pytest.mark.slow

KINDS = ("enqueued", "started", "succeeded", "failed")


def scrape(client: httpx.Client) -> dict[tuple[str, str], float]:
    """``(metric, task) -> value`` of every counter sample, plus the per-queue gauges."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.endswith("_total") or sample.name.startswith("tasks_queue_"):
                label = sample.labels.get("task") or sample.labels.get("queue", "")
                found[(sample.name, label)] = sample.value
    return found


def totals(sample: dict[tuple[str, str], float]) -> dict[str, float]:
    """Each counter summed over task names."""
    summed = dict.fromkeys(KINDS, 0.0)
    for (name, _), value in sample.items():
        for kind in KINDS:
            if name == f"tasks_{kind}_total":
                summed[kind] += value
    return summed


def enqueue(client: httpx.Client, name: str, *args: object) -> None:
    response = client.post("/tasks", json={"name": name, "args": list(args)})
    assert response.status_code == 202, response.text


def store_counts(client: httpx.Client) -> dict[str, int]:
    by_state: dict[str, int] = client.get("/tasks/stats").json()["by_state"]
    return by_state


def worker_files(server: Hypercorn) -> set[str]:
    """The pids that wrote counter files in the fleet's metrics directory."""
    roots = list(metric_files._base().glob(f"{server.pid}-*"))
    assert len(roots) == 1, roots
    return {path.stem.split("_", 1)[1].split("-")[0] for path in roots[0].glob("counter_*.db")}


def assert_monotonic(scrapes: list[dict[tuple[str, str], float]]) -> None:
    for before, after in itertools.pairwise(scrapes):
        for key, value in before.items():
            if key[0].endswith("_total"):
                assert after.get(key, 0.0) >= value, (key, value, after.get(key))


def test_one_port_sums_every_worker_and_never_goes_back(tmp_path: Path) -> None:
    env = {"TASKS_CONCURRENCY": "2", "TASKS_POLL_INTERVAL": "0.2"}
    with (
        hypercorn(tmp_path, workers=3, env=env) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        for _ in range(12):
            enqueue(client, "demo.sleep", 0.3)
        scrapes = []
        for i in range(20):
            enqueue(client, "demo.echo", i)
            if i % 5 == 0:
                enqueue(client, "demo.fail", f"boom {i}")
            scrapes.append(scrape(client))
        assert_monotonic(scrapes)
        assert any(totals(s)["started"] < 36 for s in scrapes), "scraped only after the work"

        def finished() -> dict[str, int] | None:
            counts = store_counts(client)
            busy = counts["queued"] + counts["running"] + counts["cancelling"]
            return None if busy else counts

        counts = poll(finished, 60, "every task finished")
        assert counts == {**counts, "succeeded": 32, "failed": 4}

        def settled() -> dict[str, float] | None:
            now = totals(scrape(client))
            want = {"enqueued": 36.0, "started": 36.0, "succeeded": 32.0, "failed": 4.0}
            return now if now == want else None

        final = poll(settled, 30, "totals equal to the store's counts")
        scrapes.append(scrape(client))
        assert_monotonic(scrapes)
        assert totals(scrapes[-1]) == final
        assert len(worker_files(server)) >= 2, "the work should have spread over the workers"

        # A reload (SIGHUP) replaces every worker; their files keep counting.
        old_workers = set(server.worker_pids())
        server.signal(signal.SIGHUP)
        poll(
            lambda: len(set(server.worker_pids()) - old_workers) == 3,
            60,
            "three new workers",
        )
        poll(
            lambda: client.get("/readyz").status_code == 200,
            60,
            "ready after the reload",
            ignore=httpx.TransportError,
        )
        enqueue(client, "demo.echo", "after")

        def counted_after() -> dict[str, float] | None:
            now = totals(scrape(client))
            return now if now["succeeded"] == 33.0 else None

        after = poll(counted_after, 30, "the task after the reload counted on top")
        assert after == {"enqueued": 37.0, "started": 37.0, "succeeded": 33.0, "failed": 4.0}
