"""Scenario 3: one request starts two jobs that run at the same time."""

from __future__ import annotations

from quart.typing import TestClientProtocol as QuartClient

from app.extensions import tasks
from tasks import State


async def test_two_jobs_run_concurrently(client: QuartClient) -> None:
    response = await client.post("/jobs")
    assert response.status_code == 202
    jobs = (await response.get_json())["jobs"]
    assert [job["url"] for job in jobs] == [f"/tasks/{job['id']}" for job in jobs]

    first, second = [await tasks.wait(job["id"], 20) for job in jobs]
    assert (first.name, first.state, first.args) == ("jobs.first", State.SUCCEEDED, [])
    assert (second.name, second.state, second.args) == (
        "jobs.second",
        State.SUCCEEDED,
        ["hello", 123],
    )
    assert second.result == "job #2 done with hello 123"
    # Overlap: each job started before the other one finished.
    assert first.started_at is not None
    assert second.started_at is not None
    assert first.finished_at is not None
    assert second.finished_at is not None
    assert first.started_at < second.finished_at
    assert second.started_at < first.finished_at
