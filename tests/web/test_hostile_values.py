"""Values no backend can store are refused with 422 before they reach a shared batch.

Each runs concurrently with valid requests, which must all succeed: one
hostile value used to fail every request in its group-commit transaction.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from tests.web.test_enqueue import post_raw

HOSTILE = [
    (rb'{"name": "demo.echo", "args": ["\ud800"]}', 422, "lone surrogate"),
    (rb'{"name": "demo.echo", "kwargs": {"value": {"\udfff": 1}}}', 422, "lone surrogate"),
    (rb'{"name": "demo.echo", "args": [1], "idempotency_key": "a\u0000b"}', 422, "NUL"),
    # The body's schema already refuses it, naming the field.
    (rb'{"name": "demo.echo", "args": [1], "idempotency_key": "\ud800"}', 400, "idempotency_key"),
]


@pytest.mark.parametrize(("body", "status", "problem"), HOSTILE)
async def test_unstorable_text_is_refused_and_others_in_flight_succeed(
    client: Client, unchanged: Any, body: bytes, status: int, problem: str
) -> None:
    good = [{"name": "demo.echo", "args": [n]} for n in range(20)]
    async with unchanged():
        bad = await post_raw(client, body)
    assert bad.status_code == status
    assert problem in (await bad.get_json())["error"]["message"]
    responses = await asyncio.gather(
        post_raw(client, body), *(client.post("/tasks", json=g) for g in good)
    )
    assert responses[0].status_code == status
    assert [r.status_code for r in responses[1:]] == [202] * len(good)


@pytest.mark.parametrize("app_config", [{"TASKS_MAX_QUEUED": 100, "TASKS_WORKERS": False}])
async def test_the_backlog_bound_holds_exactly_under_300_concurrent_posts(client: Client) -> None:
    responses = await asyncio.gather(
        *(client.post("/tasks", json={"name": "demo.echo", "args": [n]}) for n in range(300))
    )
    codes = [r.status_code for r in responses]
    assert (codes.count(202), codes.count(429)) == (100, 200)
    assert all(int(r.headers["Retry-After"]) > 0 for r in responses if r.status_code == 429)
    listing = await (await client.get("/tasks/stats")).get_json()
    assert listing["by_state"]["queued"] == 100
