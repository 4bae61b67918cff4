"""A seed-001-style app: Celery tasks with progress, polled through AsyncResult."""

from __future__ import annotations

import threading
from typing import Any

from quart import Blueprint, Quart, current_app, jsonify, request
from quart.typing import ResponseReturnValue

from tasks import Tasks
from tasks.compat import AsyncResult, CeleryTask, CeleryTasks

tasks = Tasks()
celery = CeleryTasks(tasks)
gate = threading.Event()
"""``long_task`` waits on this after its progress reports."""
callbacks: list[tuple[str, str, Any]] = []
"""(kind, task id, result or exception repr) for every callback that fired."""


def on_success(retval: Any, task_id: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    callbacks.append(("success", task_id, retval))


async def on_failure(
    exc: BaseException, task_id: str, args: list[Any], kwargs: dict[str, Any], tb: str | None
) -> None:
    callbacks.append(("failure", task_id, f"{type(exc).__name__}:{exc}:{current_app.name}"))


@celery.task(bind=True, on_success=on_success, on_failure=on_failure)
def long_task(self: CeleryTask[dict[str, Any]], total: int) -> dict[str, Any]:
    for step in range(1, total + 1):
        self.update_state(
            state="PROGRESS", meta={"current": step, "total": total, "status": f"step {step}"}
        )
    gate.wait(30)
    return {"result": 42, "app": current_app.name, "id": self.request.id}


@celery.task(on_success=on_success, on_failure=on_failure)
async def explode(message: str) -> None:
    raise ValueError(message)


@celery.task(bind=True)
async def cheat(self: CeleryTask[None]) -> None:
    self.update_state(state="SUCCESS", meta={"result": "early"})


@celery.task
async def add(a: int, b: int) -> int:
    return a + b


def describe(result: AsyncResult[Any]) -> dict[str, Any]:
    """The status JSON of the seed's progress-bar endpoint (reads a loaded result)."""
    state = result.state
    info = result.info
    if isinstance(info, BaseException):
        info = f"{type(info).__name__}: {info}"
    return {"id": result.id, "state": state, "info": info, "ready": result.ready()}


sync_views = Blueprint("sync", __name__, url_prefix="/sync")
async_views = Blueprint("async", __name__, url_prefix="/async")


@sync_views.post("/longtask")
def sync_longtask() -> ResponseReturnValue:
    result = long_task.apply_async(args=[3])
    return jsonify(id=result.id), 202


@sync_views.post("/add")
def sync_add() -> ResponseReturnValue:
    return jsonify(value=add.delay(2, 3).get(timeout=10))


@sync_views.post("/explode")
def sync_explode() -> ResponseReturnValue:
    result = explode.delay("boom")
    try:
        result.get(timeout=10)
    except ValueError as exc:
        return jsonify(id=result.id, raised=str(exc), failed=result.failed())
    return jsonify(id=result.id, raised=None)


@sync_views.post("/later")
def sync_later() -> ResponseReturnValue:
    result = add.apply_async(args=[1, 2], countdown=int(request.args.get("countdown", "60")))
    return jsonify(describe(result)), 202


@sync_views.get("/status/<task_id>")
def sync_status(task_id: str) -> ResponseReturnValue:
    return jsonify(describe(celery.AsyncResult(task_id)))


@sync_views.post("/revoke/<task_id>")
def sync_revoke(task_id: str) -> ResponseReturnValue:
    result = add.AsyncResult(task_id)
    result.revoke()
    return jsonify(describe(result))


@async_views.post("/longtask")
async def async_longtask() -> ResponseReturnValue:
    result = await long_task.aapply_async(args=[3])
    return jsonify(id=result.id), 202


@async_views.post("/add")
async def async_add() -> ResponseReturnValue:
    result = await add.adelay(2, 3)
    return jsonify(value=await result.aget(timeout=10))


@async_views.post("/explode")
async def async_explode() -> ResponseReturnValue:
    result = await explode.adelay("boom")
    try:
        await result.aget(timeout=10)
    except ValueError as exc:
        return jsonify(id=result.id, raised=str(exc), failed=result.failed())
    return jsonify(id=result.id, raised=None)


@async_views.post("/later")
async def async_later() -> ResponseReturnValue:
    countdown = int(request.args.get("countdown", "60"))
    result = await add.aapply_async(args=[1, 2], countdown=countdown)
    return jsonify(describe(await result.arefresh())), 202


@async_views.get("/status/<task_id>")
async def async_status(task_id: str) -> ResponseReturnValue:
    return jsonify(describe(await celery.AsyncResult(task_id).arefresh()))


@async_views.post("/revoke/<task_id>")
async def async_revoke(task_id: str) -> ResponseReturnValue:
    result = add.AsyncResult(task_id)
    await result.arevoke()
    return jsonify(describe(await result.arefresh()))


def create_app(database_url: str, **config: Any) -> Quart:
    app = Quart("celery_app")
    app.config.update(TASKS_DATABASE_URL=database_url, **config)
    tasks.init_app(app)
    app.register_blueprint(sync_views)
    app.register_blueprint(async_views)
    return app
