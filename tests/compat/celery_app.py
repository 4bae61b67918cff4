"""A seed-001-style app: Celery tasks with progress, polled through AsyncResult."""

from __future__ import annotations

import threading
from typing import Any

from quart import Blueprint, Quart, current_app, jsonify, render_template_string, request
from quart.typing import ResponseReturnValue

from tasks import Tasks, current_task
from tasks.compat import AsyncResult, CeleryTask, CeleryTasks

tasks = Tasks()
celery = CeleryTasks(tasks)
gate = threading.Event()
"""``long_task`` waits on this after its progress reports; ``slow_start`` before its first."""
started = threading.Event()
"""Set by ``slow_start`` and ``stoppable`` once they run."""
aborted: list[str] = []
"""Ids of ``stoppable`` runs that saw ``is_aborted()``."""
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


def _slow_start(self: CeleryTask[dict[str, int]], total: int) -> dict[str, int]:
    started.set()
    gate.wait(30)
    self.update_state(state="PROGRESS", meta={"current": 1, "total": total, "status": "one"})
    return {"current": total, "total": total, "result": 42}


slow_start = celery.task(bind=True, name="slow_start")(_slow_start)
slow_start_tracked = celery.task(bind=True, name="slow_start_tracked", track_started=True)(
    _slow_start
)


@celery.task(bind=True)
def stoppable(self: CeleryTask[str]) -> str:
    """The porting guide's abortable loop: stops when revoked or at shutdown."""
    started.set()
    while not self.is_aborted():
        gate.wait(0.01)  # one step of work
    aborted.append(str(self.request.id))
    return "stopped early"


@celery.task(autoretry_for=(ConnectionError,), max_retries=2, retry_backoff=0.01)
async def flaky(failures: int, error: str) -> int:
    """Raises ``error`` (a class name) on its first ``failures`` attempts."""
    attempt = current_task().attempt
    if attempt <= failures:
        raise {"ConnectionError": ConnectionError, "ValueError": ValueError}[error](error)
    return attempt


@celery.task(bind=True)
async def cheat(self: CeleryTask[None]) -> None:
    self.update_state(state="SUCCESS", meta={"result": "early"})


@celery.task
async def add(a: int, b: int) -> int:
    return a + b


def seed_status(task: AsyncResult[Any]) -> dict[str, Any]:
    """The body of seed 001's canonical progress view (Flask + Celery), unchanged."""
    if task.state == "PENDING":
        response: dict[str, Any] = {
            "state": task.state,
            "current": 0,
            "total": 1,
            "status": "Pending...",
        }
    elif task.state != "FAILURE":
        response = {
            "state": task.state,
            "current": task.info.get("current", 0),
            "total": task.info.get("total", 1),
            "status": task.info.get("status", ""),
        }
        if "result" in task.info:
            response["result"] = task.info["result"]
    else:
        response = {"state": task.state, "current": 1, "total": 1, "status": str(task.info)}
    return response


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


@sync_views.post("/slow/<name>")
def sync_slow(name: str) -> ResponseReturnValue:
    task = slow_start_tracked if name == "tracked" else slow_start
    return jsonify(id=task.apply_async(args=[10]).id), 202


@sync_views.get("/progress/<task_id>")
def sync_progress(task_id: str) -> ResponseReturnValue:
    """Seed 001's canonical status view, as the porting guide shows it for ``def`` views."""
    return jsonify(seed_status(slow_start.AsyncResult(task_id)))


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


@async_views.post("/slow/<name>")
async def async_slow(name: str) -> ResponseReturnValue:
    task = slow_start_tracked if name == "tracked" else slow_start
    return jsonify(id=(await task.aapply_async(args=[10])).id), 202


@async_views.get("/progress/<task_id>")
async def async_progress(task_id: str) -> ResponseReturnValue:
    """The same view for ``async def``: one ``arefresh()``, then the same reads."""
    return jsonify(seed_status(await slow_start.AsyncResult(task_id).arefresh()))


@async_views.post("/signup")
async def signup() -> ResponseReturnValue:
    """Seed 001's sign-up view as the porting guide ports it (body read and render awaited)."""
    form = await request.form
    email = form.get("email", "")
    result = await add.adelay(len(email), 0)
    page = await render_template_string(
        "Welcome {{ email }}, mail task {{ id }}", email=email, id=result.id
    )
    return page, 202


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


@celery.task(bind=True, max_retries=2, name="fetch_sync")
def fetch_sync(self: CeleryTask[int], fail_times: int) -> int:
    """Celery's ``raise self.retry(exc=exc, countdown=...)`` from a plain function."""
    if self.request.retries < fail_times:
        try:
            raise ConnectionError(f"down on retry {self.request.retries}")
        except ConnectionError as exc:
            raise self.retry(exc=exc, countdown=0) from exc
    return self.request.retries


@celery.task(bind=True, max_retries=2, name="fetch_async")
async def fetch_async(self: CeleryTask[int], fail_times: int) -> int:
    """The same from a coroutine function."""
    if self.request.retries < fail_times:
        raise self.retry(exc=ConnectionError(f"down on retry {self.request.retries}"), countdown=0)
    return self.request.retries


@celery.task(bind=True, max_retries=1, name="retry_without_exc")
def retry_without_exc(self: CeleryTask[None]) -> None:
    """Retries with no ``exc``: past ``max_retries`` that is MaxRetriesExceededError."""
    raise self.retry(countdown=0)
