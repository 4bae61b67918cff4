"""A Quart app whose sync (Flask-style) and async views apply Celery canvases."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Quart, jsonify
from quart.typing import ResponseReturnValue

from tasks import Tasks
from tasks.compat import CeleryTasks, GroupResult, chain, chord, group

tasks = Tasks()
celery = CeleryTasks(tasks)
seen: list[tuple[str, Any]] = []
"""(label, value) recorded by ``remember`` and ``on_fail``."""


@celery.task(name="canvas.add")
async def add(a: int, b: int) -> int:
    return a + b


@celery.task(name="canvas.mul")
def mul(a: int, b: int) -> int:
    return a * b


@celery.task(name="canvas.sub")
async def sub(a: int, b: int) -> int:
    return a - b


@celery.task(name="canvas.xsum")
async def xsum(numbers: list[int]) -> int:
    return sum(numbers)


@celery.task(name="canvas.fail")
async def fail(value: Any, message: str) -> None:
    raise ValueError(message)


@celery.task(name="canvas.remember")
async def remember(value: Any, label: str) -> Any:
    seen.append((label, value))
    return value


@celery.task(name="canvas.on_fail")
async def on_fail(task_id: str) -> str:
    """An old-style Celery errback: it receives the id of the task that failed."""
    seen.append(("errback", task_id))
    return task_id


@celery.task(name="canvas.new_style")
def new_style(request: Any, exc: Any, traceback: Any) -> None:
    """Celery's (request, exc, traceback) errback: refused here."""


def canvases() -> dict[str, Any]:
    """Each canvas the views apply, by name, with the arguments to apply it with."""
    return {
        "chain": (chain(add.s(2, 2), sub.s(1), mul.s(10)), ()),
        "pipe_partial": (sub.s(4) | mul.s(8), (16,)),
        "immutable": (add.si(2, 2) | add.si(4, 4), ()),
        "nested": (add.s(4, 16) | mul.s(2) | (add.s(4) | mul.s(8)), ()),
        "group": (group(add.s(i, i) for i in range(5)), ()),
        "partial_group": (group(sub.s(i) for i in range(3)), (10,)),
        "chord_call": (chord(add.s(i, i) for i in range(5)), ()),
        "chord": (chord([add.s(1, 1), add.s(2, 2)], xsum.s()), ()),
        "upgraded": (chain(group(add.s(1, 1), add.s(2, 2)), xsum.s(), mul.s(10)), ()),
        "piped_chord": (group(add.s(i, i) for i in range(3)) | xsum.s(), ()),
        "chain_to_group": (chain(add.s(1, 1), group(sub.s(5), add.si(5, 5))), ()),
    }


def outcome(name: str, result: Any, value: Any, parents: list[Any]) -> dict[str, Any]:
    return {
        "name": name,
        "kind": type(result).__name__,
        "value": value,
        "parents": parents,
        "ids": [r.id for r in result] if isinstance(result, GroupResult) else [result.id],
    }


sync_views = Blueprint("canvas_sync", __name__, url_prefix="/sync")
async_views = Blueprint("canvas_async", __name__, url_prefix="/async")


@sync_views.post("/canvas/<name>")
def sync_canvas(name: str) -> ResponseReturnValue:
    canvas, args = canvases()[name]
    result = canvas(xsum.s()) if name == "chord_call" else canvas.apply_async(args)
    value = result.get(timeout=20)
    parents = []
    parent = result.parent
    while parent is not None:
        parents.append(parent.get(timeout=20))
        parent = parent.parent
    return jsonify(outcome(name, result, value, parents))


@async_views.post("/canvas/<name>")
async def async_canvas(name: str) -> ResponseReturnValue:
    canvas, args = canvases()[name]
    if name == "chord_call":
        result = await canvas.with_body(xsum.s()).aapply_async()
    else:
        result = await canvas.aapply_async(args)
    value = await result.aget(timeout=20)
    parents = []
    parent = result.parent
    while parent is not None:
        parents.append(await parent.aget(timeout=20))
        parent = parent.parent
    return jsonify(outcome(name, result, value, parents))


@sync_views.post("/failing")
def sync_failing() -> ResponseReturnValue:
    result = chain(add.s(1, 1), fail.s("boom"), add.s(1)).apply_async(link_error=on_fail.s())
    try:
        result.get(timeout=20)
    except ValueError as exc:
        return jsonify(id=result.id, failed_id=result.parent.id, raised=str(exc))
    return jsonify(raised=None)


@async_views.post("/failing")
async def async_failing() -> ResponseReturnValue:
    canvas = chain(add.s(1, 1), fail.s("boom"), add.s(1))
    result = await canvas.aapply_async(link_error=on_fail.s())
    try:
        await result.aget(timeout=20)
    except ValueError as exc:
        return jsonify(id=result.id, failed_id=result.parent.id, raised=str(exc))
    return jsonify(raised=None)


@sync_views.post("/group_status")
def sync_group_status() -> ResponseReturnValue:
    result = group(add.s(1, 1), fail.s(0, "no"), add.s(2, 2)).apply_async()
    values = result.get(timeout=20, propagate=False)
    return jsonify(group_status(result, values))


@async_views.post("/group_status")
async def async_group_status() -> ResponseReturnValue:
    result = await group(add.s(1, 1), fail.s(0, "no"), add.s(2, 2)).aapply_async()
    values = await result.aget(timeout=20, propagate=False)
    await result.arefresh()
    return jsonify(group_status(result, values))


def group_status(result: GroupResult, values: list[Any]) -> dict[str, Any]:
    return {
        "id": result.id,
        "values": [repr(v) if isinstance(v, BaseException) else v for v in values],
        "ready": result.ready(),
        "successful": result.successful(),
        "failed": result.failed(),
        "completed": result.completed_count(),
        "members": len(result),
    }


@sync_views.post("/link")
def sync_link() -> ResponseReturnValue:
    result = add.apply_async((2, 2), link=remember.s("sync"))
    return jsonify(id=result.id, value=result.get(timeout=20))


@async_views.post("/link")
async def async_link() -> ResponseReturnValue:
    sig = add.s(2, 2)
    sig.link(remember.s("async"))
    result = await sig.aapply_async()
    return jsonify(id=result.id, value=await result.aget(timeout=20))


def create_app(database_url: str) -> Quart:
    app = Quart("canvas_app")
    app.config.update(TASKS_DATABASE_URL=database_url)
    tasks.init_app(app)
    app.register_blueprint(sync_views)
    app.register_blueprint(async_views)
    return app
