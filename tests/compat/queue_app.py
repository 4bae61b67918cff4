"""A seed-000-style app: views put items on a bounded TaskQueue (sync and async views)."""

from __future__ import annotations

import queue
import threading
from typing import Any

from quart import Blueprint, Quart, current_app, jsonify, request
from quart.typing import ResponseReturnValue

from tasks import Tasks
from tasks.compat import TaskQueue

tasks = Tasks()
tq = TaskQueue(tasks)
gate = threading.Event()
"""The handler waits on this, so tests decide when items finish."""


@tq.handler
def save(item: str) -> dict[str, Any]:
    gate.wait(30)
    return {"item": item, "app": current_app.name}


sync_views = Blueprint("sync", __name__, url_prefix="/sync")
async_views = Blueprint("async", __name__, url_prefix="/async")


def _timeout() -> float:
    return float(request.args.get("timeout", "2"))


@sync_views.post("/put")
def sync_put() -> ResponseReturnValue:
    try:
        handle = tq.put(request.args.get("data", "default"), timeout=_timeout())
    except queue.Full:
        return jsonify(msg="queue is full, try later"), 400
    return jsonify(msg="request accepted", id=handle.id), 202


@sync_views.post("/put_nowait")
def sync_put_nowait() -> ResponseReturnValue:
    try:
        handle = tq.put_nowait(request.args.get("data", "default"))
    except queue.Full:
        return jsonify(msg="queue is full, try later"), 400
    return jsonify(msg="request accepted", id=handle.id), 202


@sync_views.get("/size")
def sync_size() -> ResponseReturnValue:
    return jsonify(size=tq.qsize(), full=tq.full(), empty=tq.empty())


@sync_views.post("/join")
def sync_join() -> ResponseReturnValue:
    tq.join(timeout=_timeout())
    return jsonify(size=tq.qsize())


@async_views.post("/put")
async def async_put() -> ResponseReturnValue:
    try:
        handle = await tq.aput(request.args.get("data", "default"), timeout=_timeout())
    except queue.Full:
        return jsonify(msg="queue is full, try later"), 400
    return jsonify(msg="request accepted", id=handle.id), 202


@async_views.post("/put_nowait")
async def async_put_nowait() -> ResponseReturnValue:
    try:
        handle = await tq.aput(request.args.get("data", "default"), block=False)
    except queue.Full:
        return jsonify(msg="queue is full, try later"), 400
    return jsonify(msg="request accepted", id=handle.id), 202


@async_views.get("/size")
async def async_size() -> ResponseReturnValue:
    size = await tq.aqsize()
    return jsonify(size=size, full=size >= tq.maxsize, empty=size == 0)


@async_views.post("/join")
async def async_join() -> ResponseReturnValue:
    await tq.ajoin(timeout=_timeout())
    return jsonify(size=await tq.aqsize())


def create_app(database_url: str, **config: Any) -> Quart:
    """A fresh app: ``MAX_QUEUE_SIZE`` 2 unless ``config`` says otherwise."""
    app = Quart("queue_app")
    app.config.update({"TASKS_DATABASE_URL": database_url, "MAX_QUEUE_SIZE": 2, **config})
    tasks.init_app(app)
    tq.init_app(app)
    app.register_blueprint(sync_views)
    app.register_blueprint(async_views)
    return app
