"""Files received by the TCP side server: the checksum task, the table and ``GET /uploads``."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from quart import Blueprint, Response, jsonify

from app.access import requires_token
from app.db import AppDatabase, app_db
from app.extensions import tasks
from app.scenarios.responses import install_error_handlers
from tasks import TaskNotFoundError

blueprint = Blueprint("uploads", __name__, url_prefix="/uploads")
install_error_handlers(blueprint)


@tasks.task(name="uploads.checksum", executor="process")
def checksum(path: str) -> dict[str, Any]:
    """SHA-256 and size of the file at ``path``, computed in a pool process."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "size": size}


async def record_upload(
    database: AppDatabase, name: str, path: str, size: int, task_id: str
) -> int:
    """Store a received file's row; returns its id."""
    return await database.insert(
        "INSERT INTO uploads (name, path, size, task_id, received_at) VALUES (?, ?, ?, ?, ?)",
        (name, path, size, task_id, time.time()),
    )


@blueprint.get("")
@requires_token
async def list_uploads() -> Response:
    """The newest 50 uploads, each with its checksum task's state and result."""
    rows = await app_db().fetch_all(
        "SELECT id, name, path, size, task_id, received_at FROM uploads ORDER BY id DESC LIMIT 50"
    )
    for row in rows:
        try:
            record = await tasks.get(row["task_id"])
        except TaskNotFoundError:  # purged after TASKS_RESULT_TTL
            row["checksum"] = None
        else:
            row["checksum"] = {"state": record.state.value, "result": record.result}
    return jsonify({"uploads": rows})
