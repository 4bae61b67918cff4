"""/metrics: per-queue gauges from the store, claim and commit latency, the fleet directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart
from quart.typing import TestClientProtocol as Client

from tasks import Tasks
from tasks.web import metric_files
from tests.conftest import eventually
from tests.web.test_api import enqueue, until_state


async def samples(client: Client) -> dict[tuple[str, str], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    found = {}
    for family in text_string_to_metric_families(await response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, sample.labels.get("queue", ""))] = sample.value
    return found


async def test_queue_gauges_follow_the_store(client: Client) -> None:
    await enqueue(client, "demo.echo", 1, delay=3600)
    await enqueue(client, "demo.echo", 2, delay=3600, queue="mail")
    now = await samples(client)
    assert now[("tasks_queue_depth", "default")] == 1.0
    assert now[("tasks_queue_depth", "mail")] == 1.0
    assert now[("tasks_queue_running", "default")] == 0.0
    assert now[("tasks_queue_oldest_age_seconds", "mail")] == 0.0  # none due yet
    assert now[("tasks_queued", "")] == 2.0
    assert now[("tasks_workers_alive", "")] == 1.0  # this process, from the worker registry

    done = await enqueue(client, "demo.echo", 3)
    await until_state(client, done["id"], "succeeded")

    # The claim and the group commits of this run were timed.
    now = await samples(client)
    assert now[("tasks_commit_seconds_count", "")] >= 2  # the inserts, the claim, the finish
    assert now[("tasks_claim_seconds_count", "")] >= 1
    assert now[("tasks_commit_seconds_sum", "")] > 0


async def test_oldest_age_counts_from_the_due_time(client: Client) -> None:
    # A task due in the past that no worker takes (a queue nobody serves).
    await enqueue(client, "demo.echo", 1, queue="nobody")

    async def waited() -> float | None:
        age = (await samples(client)).get(("tasks_queue_oldest_age_seconds", "nobody"), 0.0)
        return age if age > 0 else None

    assert await eventually(waited) > 0


def test_fleet_directories_of_gone_leaders_are_swept(tmp_path: Path) -> None:
    base = metric_files._base()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stale = base / f"{dead}-1"
    stale.mkdir(exist_ok=True)
    (stale / "counter_1-1.db").write_bytes(b"")
    mine = base / f"{os.getpid()}-{metric_files._start_time(os.getpid())}"
    metric_files._sweep(base, keep="nothing")
    assert not stale.exists()
    mine.mkdir(exist_ok=True)
    metric_files._sweep(base, keep="nothing")
    assert mine.exists(), "a live leader's directory stays"


@pytest.mark.parametrize("value", ["", "set"])
def test_an_operator_directory_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    if value:
        monkeypatch.setenv(metric_files.ENV, str(tmp_path / "mine"))
        assert metric_files.fleet_directory() == tmp_path / "mine"
        assert (tmp_path / "mine").is_dir()
    else:
        monkeypatch.delenv(metric_files.ENV, raising=False)
        path = metric_files.fleet_directory()
        assert path.parent == metric_files._base()
        assert os.environ[metric_files.ENV] == str(path)
        # A child process that inherits the variable works out its own directory.
        assert metric_files.fleet_directory() == path  # same process, same fleet
        monkeypatch.setenv(metric_files.ENV, str(tmp_path / "inherited"))
        monkeypatch.setenv(metric_files.OURS, str(tmp_path / "inherited"))
        assert metric_files.fleet_directory() == path


async def test_workers_alive_once_wired(app: Quart, client: Client) -> None:
    """The seam the worker registry plugs into: a coroutine function counting live workers."""
    web = app.extensions["tasks_web"]

    async def alive(tasks: Tasks) -> int:
        return 3

    web.metrics.workers_alive = alive
    assert (await samples(client))[("tasks_workers_alive", "")] == 3.0


async def test_time_held_back_by_limits_is_counted(app: Quart, client: Client) -> None:
    from app.scenarios.mail import send_welcome

    handles = [await send_welcome.enqueue(f"m{n}@example.org", "M") for n in range(12)]
    for handle in handles:
        await handle.wait(20)
    held = (await samples(client))[("tasks_limited_wait_seconds_total", "")]
    # 12 mails at 10/s: the last two waited for the next window, most of a second each.
    assert held > 0.5
    plain = await enqueue(client, "demo.echo", 1)
    await until_state(client, plain["id"], "succeeded")
    assert (await samples(client))[("tasks_limited_wait_seconds_total", "")] == held
