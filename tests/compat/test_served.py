"""Real Hypercorn: work accepted via the compat APIs before SIGTERM completes after restart."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import Hypercorn, poll, serving

pytestmark = pytest.mark.slow


def _served_app(root: Path) -> Hypercorn:
    """The compat app on ``root/tasks.sqlite3``; every start appends to ``root/server.log``."""
    env = {
        "TASKS_DATABASE_URL": f"sqlite:///{root / 'tasks.sqlite3'}",
        "TASKS_SHUTDOWN_TIMEOUT": "0.3",
    }
    return Hypercorn(root, env=env, app="tests.compat.served_app:app", ready_path="/health")


def _poll(check: Any, timeout: float, what: str) -> Any:
    return poll(check, timeout, what, ignore=httpx.TransportError)


def test_accepted_work_survives_sigterm_and_restart(tmp_path: Path) -> None:
    with serving(_served_app(tmp_path)) as server:
        base = server.base_url
        running = httpx.post(f"{base}/celery?steps=40").json()["id"]
        delayed = httpx.post(f"{base}/celery?steps=2&countdown=1").json()["id"]
        items = [httpx.post(f"{base}/queue?data=item-{n}").json()["id"] for n in range(3)]

        def crunching() -> Any:
            return httpx.get(f"{base}/celery/{running}").json()["state"] == "PROGRESS"

        _poll(crunching, 30, "the long task reports progress")
        server.signal(signal.SIGTERM)
        assert server.wait_exit(60) is not None
    logged = server.output(all_starts=True)
    assert "requeueing" in logged, logged

    with serving(_served_app(tmp_path)) as server:
        base = server.base_url

        def outcome(task_id: str) -> Any:
            body = httpx.get(f"{base}/celery/{task_id}").json()
            return body if body["state"] in ("SUCCESS", "FAILURE", "REVOKED") else None

        assert _poll(lambda: outcome(running), 60, "long task done")["info"] == {
            "steps": 40,
            "attempt": 1,
        }
        assert _poll(lambda: outcome(delayed), 60, "delayed task done")["state"] == "SUCCESS"
        _poll(lambda: httpx.get(f"{base}/queue").json()["size"] == 0, 60, "queue drained")
        for n, task_id in enumerate(items):
            record = httpx.get(f"{base}/task/{task_id}").json()
            assert (record["state"], record["result"]) == ("succeeded", {"stored": f"item-{n}"})
