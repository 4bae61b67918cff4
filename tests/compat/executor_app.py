"""A seed-002/004-style app: views hand functions to a Flask-Executor-like Executor."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from contextvars import ContextVar
from typing import Any

from quart import Blueprint, Quart, current_app, jsonify, request
from quart.typing import ResponseReturnValue

from tasks import Tasks
from tasks.compat import Executor

tasks = Tasks()
executor = Executor(tasks)
caller_tag: ContextVar[str] = ContextVar("caller_tag", default="unset")
finished: list[int] = []
"""``id()`` of every future the default done callback saw."""
outcomes: list[str] = []
"""What the porting guide's done callback saw, one line per finished job."""


def _note_done(future: Future[Any]) -> None:
    finished.append(id(future))


executor.add_default_done_callback(_note_done)


def work(x: int) -> dict[str, Any]:
    return {
        "double": x * 2,
        "app": current_app.name,
        "tag": caller_tag.get(),
        "thread": threading.current_thread().name,
    }


def fake_work(num: int) -> int:
    if num < 0:
        raise ValueError(f"cannot work on {num}")
    return num * 10


def report(future: Future[int]) -> None:
    """The porting guide's done callback (pattern 4): never raises."""
    error = future.exception()
    outcomes.append(f"failed: {error!r}" if error else f"done: {future.result()}")


sync_views = Blueprint("sync", __name__, url_prefix="/sync")
async_views = Blueprint("async", __name__, url_prefix="/async")


def _x() -> int:
    return int(request.args.get("x", "1"))


@sync_views.get("/run")
def sync_run() -> ResponseReturnValue:
    caller_tag.set(f"sync-{_x()}")
    future = executor.submit(work, _x())
    return jsonify(future.result(timeout=10))


@sync_views.get("/map")
def sync_map() -> ResponseReturnValue:
    return jsonify([r["double"] for r in executor.map(work, [1, 2, 3], timeout=10)])


@sync_views.post("/stored/<key>")
def sync_store(key: str) -> ResponseReturnValue:
    executor.submit_stored(key, work, _x())
    return jsonify(key=key), 202


@sync_views.get("/stored/<key>")
def sync_stored(key: str) -> ResponseReturnValue:
    if not executor.futures.done(key):
        return jsonify(status=executor.futures.running(key))
    future = executor.futures.pop(key)
    assert future is not None
    return jsonify(status="done", result=future.result())


@sync_views.post("/callback")
def sync_callback() -> ResponseReturnValue:
    future = executor.submit(fake_work, _x())
    future.add_done_callback(report)
    return jsonify(msg="started"), 202


@async_views.post("/callback")
async def async_callback() -> ResponseReturnValue:
    future = executor.submit(fake_work, _x())
    future.add_done_callback(report)
    return jsonify(msg="started"), 202


@async_views.get("/run")
async def async_run() -> ResponseReturnValue:
    caller_tag.set(f"async-{_x()}")
    return jsonify(await executor.submit(work, _x()))


@async_views.get("/map")
async def async_map() -> ResponseReturnValue:
    return jsonify([r["double"] async for r in executor.amap(work, [1, 2, 3], timeout=10)])


@async_views.post("/stored/<key>")
async def async_store(key: str) -> ResponseReturnValue:
    executor.submit_stored(key, work, _x())
    return jsonify(key=key), 202


@async_views.get("/stored/<key>")
async def async_stored(key: str) -> ResponseReturnValue:
    if not executor.futures.done(key):
        return jsonify(status=executor.futures.running(key))
    future = executor.futures.pop(key)
    assert future is not None
    return jsonify(status="done", result=await future)


def create_app(database_url: str, **config: Any) -> Quart:
    app = Quart("executor_app")
    app.config.update(TASKS_DATABASE_URL=database_url, **config)
    tasks.init_app(app)
    executor.init_app(app)
    app.register_blueprint(sync_views)
    app.register_blueprint(async_views)
    return app
