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
from sqlalchemy import CursorResult, select
from sqlalchemy.dialects.sqlite import insert

from app.access import requires_token
from app.db import AppDatabase, app_db
from app.extensions import tasks
from app.models import Record
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
    statement = (
        insert(Record)
        .values(task_id=task_id, data=data, created_at=time.time())
        .on_conflict_do_nothing(index_elements=[Record.task_id])
    )
    async with database.session() as session:
        result: CursorResult[Any] = await session.execute(statement)  # type: ignore[assignment]
        return result.rowcount == 1


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
    async with app_db().session() as session:
        found = await session.scalars(select(Record).order_by(Record.id.desc()).limit(int(raw)))
        rows = [
            {"id": r.id, "task_id": r.task_id, "data": r.data, "created_at": r.created_at}
            for r in found
        ]
    return jsonify({"records": rows})
