"""The reference app's own routes: stored data behind TASKS_API_TOKEN, no cross-site writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as QuartClient

from app import create_app
from app.extensions import tasks

TOKEN = "app-s3cret"
DATA_ROUTES = [
    "/outbox",
    "/records",
    "/records/atomic",
    "/uploads",
    "/fire/callbacks",
    "/fire/threads",
]
CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
]


async def test_data_routes_need_the_token_when_one_is_set(app_config: dict[str, Any]) -> None:
    app = create_app({**app_config, "TASKS_API_TOKEN": TOKEN})
    async with app.test_app():
        client = app.test_client()
        for path in DATA_ROUTES:
            refused = await client.get(path)
            assert refused.status_code == 401, path
            assert (await refused.get_json())["error"]["code"] == "unauthorized"
            allowed = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert allowed.status_code == 200, path


async def test_data_routes_stay_open_without_a_token(client: QuartClient) -> None:
    for path in DATA_ROUTES:
        assert (await client.get(path)).status_code == 200, path


@pytest.mark.parametrize("headers", CROSS_SITE)
async def test_cross_site_posts_are_refused_everywhere(
    app: Quart, client: QuartClient, headers: dict[str, str]
) -> None:
    running = await tasks.registry["demo.sleep"].enqueue(30)
    for path, body in [
        ("/records", {"data": "forged"}),
        ("/signup", {"email": "eve@example.org", "name": "Eve"}),
        ("/tasks", {"name": "demo.echo", "args": [1]}),
        (f"/tasks/{running.id}/cancel", None),
    ]:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 403, (path, headers)
        assert (await response.get_json())["error"]["code"] == "cross_site_request"
    counts = await tasks.store.count_by_state()
    assert sum(counts.values()) == 1  # only the sleeper: nothing was enqueued
    assert (await tasks.get(running.id)).state.value in ("queued", "running")
    await tasks.cancel(running.id)


async def test_same_origin_and_programs_are_served(app: Quart, client: QuartClient) -> None:
    for headers in (
        {},  # curl, scripts: no Origin header
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "http://localhost"},
    ):
        response = await client.post("/records", json={"data": "ok"}, headers=headers)
        assert response.status_code == 202, headers


async def test_the_bearer_token_passes_from_any_origin(
    app_config: dict[str, Any], tmp_path: Path
) -> None:
    app = create_app({**app_config, "TASKS_API_TOKEN": TOKEN})
    async with app.test_app():
        client = app.test_client()
        headers = {"Authorization": f"Bearer {TOKEN}", "Origin": "https://client.example"}
        response = await client.post(
            "/tasks", json={"name": "demo.echo", "args": [1]}, headers=headers
        )
        assert response.status_code == 202
        cookie_only = {"Sec-Fetch-Site": "cross-site", "X-Tasks-Dashboard": "1"}
        client.set_cookie("localhost", "tasks_token", TOKEN)
        refused = await client.post(
            "/tasks", json={"name": "demo.echo", "args": [1]}, headers=cookie_only
        )
        assert refused.status_code == 403
