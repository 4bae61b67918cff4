"""Served by a real Hypercorn in test_served.py: Flask-style sync views on the compat APIs.

Settings come from the environment (``TASKS_DATABASE_URL``, ``TASKS_SHUTDOWN_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Quart, jsonify, request
from quart.typing import ResponseReturnValue

from tasks import Tasks
from tasks.compat import CeleryTask, CeleryTasks, TaskQueue

tasks = Tasks()
celery = CeleryTasks(tasks)
tq = TaskQueue(tasks, maxsize=10)


@celery.task(bind=True)
async def crunch(self: CeleryTask[dict[str, Any]], steps: int) -> dict[str, Any]:
    for step in range(1, steps + 1):
        self.update_state(state="PROGRESS", meta={"current": step, "total": steps})
        await asyncio.sleep(0.1)
    return {"steps": steps, "attempt": self.request.retries + 1}


@tq.handler
async def store_item(item: str) -> dict[str, str]:
    await asyncio.sleep(0.5)
    return {"stored": item}


app = Quart(__name__)
tasks.init_app(app)
tq.init_app(app)


@app.get("/health")
async def health() -> ResponseReturnValue:
    return jsonify(ok=tasks.accepting)


@app.post("/celery")
def start_crunch() -> ResponseReturnValue:
    countdown = request.args.get("countdown")
    result = crunch.apply_async(
        args=[int(request.args.get("steps", "10"))],
        countdown=float(countdown) if countdown else None,
    )
    return jsonify(id=result.id), 202


@app.get("/celery/<task_id>")
def crunch_status(task_id: str) -> ResponseReturnValue:
    result = crunch.AsyncResult(task_id)
    state, info = result.state, result.info
    return jsonify(state=state, info=info if not isinstance(info, BaseException) else str(info))


@app.post("/queue")
def put_item() -> ResponseReturnValue:
    handle = tq.put(request.args.get("data", "item"), timeout=5)
    return jsonify(id=handle.id), 202


@app.get("/queue")
def queue_size() -> ResponseReturnValue:
    return jsonify(size=tq.qsize())


@app.get("/task/<task_id>")
async def task_record(task_id: str) -> ResponseReturnValue:
    return jsonify((await tasks.get(task_id)).to_dict())
