"""Scenario 1 (seed 000): accept data at once, write a record after some work, exactly once.

The Flask version put items on an in-memory ``queue.Queue`` read by threads
started in ``init_app``: items were lost on restart, every app process
started its own threads, and a full queue answered 400. Here each item is a
durable task; the write is keyed by the task id, so a retried task (at-least-
once delivery) never writes twice; a full backlog answers 503 with
``Retry-After``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from quart import Blueprint, Response, current_app, jsonify, request

from app.access import requires_token
from app.db import AppDatabase, app_db
from app.extensions import tasks
from app.scenarios.responses import (
    ApiError,
    accepted,
    install_error_handlers,
    json_object,
    text_field,
)
from tasks import current_task

blueprint = Blueprint("records", __name__, url_prefix="/records")
install_error_handlers(blueprint)

MAX_DATA_LENGTH = 10_000


@tasks.task(name="records.store")
async def store_record(data: str) -> dict[str, Any]:
    """Simulate some work, then write ``data`` as a record keyed by this task's id."""
    await asyncio.sleep(current_app.config["APP_RECORD_WORK_SECONDS"])
    written = await save_record(app_db(), current_task().id, data)
    return {"written": written}


async def save_record(database: AppDatabase, task_id: str, data: str) -> bool:
    """Insert the record of ``task_id`` unless it exists; True if this call wrote it."""
    changed = await database.execute(
        "INSERT INTO records (task_id, data, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (task_id) DO NOTHING",
        (task_id, data, time.time()),
    )
    return changed == 1


@blueprint.post("")
async def create_record() -> tuple[Response, int, dict[str, str]]:
    """Enqueue ``records.store`` with the body's ``data``; 202 with the task id."""
    data = text_field(await json_object(), "data", MAX_DATA_LENGTH)
    return accepted(await store_record.enqueue(data))


@blueprint.get("")
@requires_token
async def list_records() -> Response:
    """The newest records (``?limit=``, default 50, at most 500)."""
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise ApiError(400, "invalid_limit", "limit must be an integer from 1 to 500")
    rows = await app_db().fetch_all(
        "SELECT id, task_id, data, created_at FROM records ORDER BY id DESC LIMIT ?", (int(raw),)
    )
    return jsonify({"records": rows})
