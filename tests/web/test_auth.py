"""TASKS_API_TOKEN: bearer token on the API, cookie for the dashboard."""

from __future__ import annotations

import pytest
from quart.typing import TestClientProtocol as Client

TOKEN = "s3cret-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
pytestmark = pytest.mark.parametrize("app_config", [{"TASKS_API_TOKEN": TOKEN}])


async def test_api_needs_the_token(client: Client, unchanged: object) -> None:
    for method, path in (("GET", "/tasks"), ("GET", "/tasks/stats"), ("POST", "/tasks")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = await client.open(path, method=method, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert (await response.get_json())["error"]["code"] == "unauthorized"
    dashboard = await client.get("/tasks/dashboard")
    assert dashboard.status_code == 401


async def test_right_token_is_accepted(client: Client) -> None:
    response = await client.post("/tasks", json={"name": "demo.echo", "args": [1]}, headers=BEARER)
    assert response.status_code == 202
    assert (await client.get("/tasks", headers=BEARER)).status_code == 200


async def test_probes_metrics_and_openapi_stay_open(client: Client) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/tasks/static/dashboard.js"):
        assert (await client.get(path)).status_code == 200, path


async def test_dashboard_token_becomes_a_cookie(client: Client) -> None:
    wrong = await client.get("/tasks/dashboard?token=nope")
    assert wrong.status_code == 401
    login = await client.get("/tasks/dashboard?token=" + TOKEN + "&state=queued")
    assert login.status_code == 302
    assert login.headers["Location"] == "/tasks/dashboard?state=queued"
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    page = await client.get("/tasks/dashboard")
    assert page.status_code == 200
    assert (await client.get("/tasks/stats")).status_code == 200
    missing = f"/tasks/{'0' * 32}/cancel"
    assert (await client.post(missing)).status_code == 401
    assert (await client.post(missing, headers={"X-Tasks-Dashboard": "1"})).status_code == 404
