"""TasksWeb on an app of one's own: a custom prefix, and tasks kept off HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from quart import Quart

from tasks import Tasks
from tasks.web import TasksWeb

own = Tasks()


@own.task(name="public.add", http=True)
async def add(a: int, b: int) -> int:
    return a + b


@own.task(name="internal.wipe", http=False)
async def wipe() -> None:
    raise AssertionError("never started from HTTP")


@pytest.fixture
async def own_app(backend_url: str) -> AsyncIterator[Quart]:
    app = Quart(__name__)
    app.config["TASKS_DATABASE_URL"] = backend_url
    own.init_app(app)
    TasksWeb(own, url_prefix="/api/jobs").init_app(app)
    async with app.test_app():
        yield app


async def test_mounted_under_a_custom_prefix(own_app: Quart) -> None:
    client = own_app.test_client()
    response = await client.post("/api/jobs", json={"name": "public.add", "args": [2, 3]})
    assert response.status_code == 202
    location = response.headers["Location"]
    assert location.startswith("/api/jobs/")
    handle_id = location.rsplit("/", 1)[1]
    assert (await own.wait(handle_id, timeout=10)).result == 5
    assert (await client.get("/api/jobs/dashboard")).status_code == 200
    paths = (await (await client.get("/openapi.json")).get_json())["paths"]
    assert "/api/jobs/{task_id}/events" in paths


async def test_task_marked_http_false_cannot_be_enqueued(own_app: Quart) -> None:
    client = own_app.test_client()
    response = await client.post("/api/jobs", json={"name": "internal.wipe"})
    assert response.status_code == 422
    assert (await response.get_json())["error"]["code"] == "unknown_task"
    assert sum((await own.store.count_by_state()).values()) == 0
    page = await (await client.get("/api/jobs/dashboard")).get_data(as_text=True)
    assert "internal.wipe" not in page


async def test_quiet_stream_sends_keepalive_comments(backend_url: str) -> None:
    app = Quart(__name__)
    app.config["TASKS_DATABASE_URL"] = backend_url
    app.config["TASKS_WORKERS"] = False
    own.init_app(app)
    TasksWeb(own, keepalive=0.2).init_app(app)
    async with app.test_app():
        handle = await add.enqueue(1, 2)
        connection = app.test_client().request(f"/tasks/{handle.id}/events")
        text = ""
        async with asyncio.timeout(15), connection:
            while text.count(": keep-alive") < 2:
                text += (await connection.receive()).decode()
            await own.cancel(handle.id)
        text += connection.response_data.decode()  # what arrived until the stream ended
    assert text.count("event: task") == 2  # queued at once, cancelled at the end
    assert text.index("event: task") < text.index(": keep-alive")


async def test_docs_page_loads_swagger_ui_from_the_task_blueprint(backend_url: str) -> None:
    app = Quart(__name__)
    app.config.update(TASKS_DATABASE_URL=backend_url, TASKS_WORKERS=False, TASKS_API_TOKEN="s3")
    own.init_app(app)
    TasksWeb(own, url_prefix="/api/jobs").init_app(app)
    async with app.test_app():
        client = app.test_client()
        page = await (await client.get("/docs")).get_data(as_text=True)
        assert 'src="/api/jobs/swagger-ui/swagger-ui-bundle.js"' in page
        assert 'href="/api/jobs/swagger-ui/swagger-ui.css"' in page
        # The page is public, so are the viewer's files: no token needed.
        script = await client.get("/api/jobs/swagger-ui/swagger-ui-bundle.js")
        assert script.status_code == 200
        assert script.mimetype in ("text/javascript", "application/javascript")
        assert b"SwaggerUIBundle" in await script.get_data()
        assert (await client.get("/api/jobs/swagger-ui/swagger-ui.css")).mimetype == "text/css"
        # Only those two files; the rest of the folder and the API stay closed.
        assert (await client.get("/api/jobs/swagger-ui/index.html")).status_code == 404
        assert (await client.get("/api/jobs/stats")).status_code == 401
