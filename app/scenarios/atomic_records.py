"""Scenario 1b: a record request and its task, committed or rolled back together.

``POST /records`` (``records.py``) enqueues in a transaction of its own: had
the view also written a row of its own first, a crash or an error between
the two would leave a row with no task, or a task with no row. Here the view
adds a ``RecordRequest`` row and enqueues ``records.fulfil`` in ONE
transaction on the task database (``tasks.enqueue_in`` with the app's own
SQLAlchemy session, see ``app/taskdb.py``): both exist, or neither does. The task
finds its request by its own id, writes the record (keyed by task id, so a
retry writes nothing twice) and marks the request done.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from quart import Blueprint, Quart, Response, current_app, jsonify, request
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access import requires_token
from app.database import ConflictError
from app.db import app_db
from app.extensions import tasks
from app.models import RecordRequest
from app.scenarios.records import MAX_DATA_LENGTH, save_record
from app.scenarios.responses import (
    ApiError,
    accepted,
    install_error_handlers,
    json_object,
    text_field,
)
from app.taskdb import init_task_db, task_db
from tasks import StoreUnavailableError, TaskHandle, current_task
from tasks.web.errors import render_tasks_error

blueprint = Blueprint("atomic_records", __name__, url_prefix="/records/atomic")
install_error_handlers(blueprint)


@blueprint.errorhandler(StoreUnavailableError)
async def store_unavailable(error: StoreUnavailableError) -> Response:
    """The task database cannot be written (nothing was): 503 with ``Retry-After``."""
    return render_tasks_error(error)


MAX_KEY_LENGTH = 200


@tasks.task(name="records.fulfil")
async def fulfil_request() -> dict[str, Any]:
    """Write the record asked for by this task's request row, then mark the request done."""
    task_id = current_task().id
    await asyncio.sleep(current_app.config["APP_RECORD_WORK_SECONDS"])
    database = task_db()
    async with database.session() as session:
        request_row = await session.get(RecordRequest, task_id)
    if request_row is None:  # cannot happen: the row was committed with this task
        raise LookupError(f"no record request for task {task_id}")
    written = await save_record(app_db(), task_id, request_row.data)
    async with database.session() as session:
        await session.execute(
            update(RecordRequest)
            .where(RecordRequest.task_id == task_id, RecordRequest.done_at.is_(None))
            .values(done_at=time.time())
        )
    return {"written": written}


async def request_record(
    session: AsyncSession, data: str, key: str | None = None
) -> TaskHandle[dict[str, Any]]:
    """Enqueue ``records.fulfil`` and add its request row, both inside ``session``'s transaction.

    The row is flushed here, so a second ``key`` breaks its uniqueness now
    (``app.database.ConflictError`` once the session's block ends). Nothing is
    visible to workers or readers until the caller commits; if the caller
    rolls back, the task is gone with the row.
    """
    [handle] = await tasks.enqueue_in(session, fulfil_request.call())
    session.add(
        RecordRequest(task_id=handle.id, data=data, request_key=key, requested_at=time.time())
    )
    await session.flush()
    return handle


@blueprint.post("")
async def create_request() -> tuple[Response, int, dict[str, str]]:
    """Store a request for ``data`` and its task atomically; 202 with the task id.

    An optional ``key`` names the request: a second request with the same key
    answers 409 and leaves no second task behind.
    """
    body = await json_object()
    data = text_field(body, "data", MAX_DATA_LENGTH)
    key = None if body.get("key") is None else text_field(body, "key", MAX_KEY_LENGTH)
    try:
        async with task_db().session() as session:
            handle = await request_record(session, data, key)
    except ConflictError:
        raise ApiError(
            409, "duplicate_key", f"a request with key {key!r} exists; nothing was enqueued"
        ) from None
    return accepted(handle)


@blueprint.get("")
@requires_token
async def list_requests() -> Response:
    """The newest record requests with ``done_at`` once written (``?limit=``, default 50)."""
    raw = request.args.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise ApiError(400, "invalid_limit", "limit must be an integer from 1 to 500")
    query = select(RecordRequest).order_by(RecordRequest.requested_at.desc()).limit(int(raw))
    async with task_db().session() as session:
        rows = [
            {
                "task_id": r.task_id,
                "data": r.data,
                "request_key": r.request_key,
                "requested_at": r.requested_at,
                "done_at": r.done_at,
            }
            for r in await session.scalars(query)
        ]
    return jsonify({"requests": rows})


def init_app(app: Quart) -> None:
    """Mount the endpoints and open the app's connection to the task database."""
    init_task_db(app, tasks)
    app.register_blueprint(blueprint)
