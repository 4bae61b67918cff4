"""Files received by the TCP side server: the checksum task, the table, ``GET /uploads``,
and ``POST /uploads/manifest``, a workflow that fans out over the files.

The manifest is a chord: one checksum step per file, run in parallel (in pool
processes), then one step that receives every checksum, in order, and sums
them up. The whole workflow is written in one transaction, and the database
starts the last step when the last checksum succeeds, so a crash of any
process in between neither loses it nor runs it twice.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from quart import Blueprint, Response, jsonify

from app.access import requires_token
from app.db import AppDatabase, app_db
from app.extensions import tasks
from app.scenarios.responses import ApiError, install_error_handlers
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


MANIFEST_FILES = 50
"""The newest uploads a manifest covers."""


@tasks.task(name="uploads.manifest")
def manifest(checksums: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Files, bytes, and one SHA-256 over the files' names and digests, in order."""
    digest = hashlib.sha256()
    for name, checksum_ in zip(names, checksums, strict=True):
        digest.update(f"{name}\0{checksum_['sha256']}\n".encode())
    return {
        "files": len(checksums),
        "bytes": sum(c["size"] for c in checksums),
        "sha256": digest.hexdigest(),
    }


@blueprint.post("/manifest")
@requires_token
async def start_manifest() -> tuple[Response, int]:
    """Checksum the newest files in parallel, then sum them up: 202 with the workflow."""
    rows = await app_db().fetch_all(
        "SELECT name, path FROM uploads ORDER BY id DESC LIMIT ?", (MANIFEST_FILES,)
    )
    if not rows:
        raise ApiError(409, "no_uploads", "no file has been uploaded yet")
    names = [row["name"] for row in rows]
    flow = tasks.chord([checksum.call(row["path"]) for row in rows], manifest.then(names))
    handle = await flow.enqueue()
    body = {
        "workflow": handle.id,
        "url": f"/tasks/workflows/{handle.id}",
        "result": f"/tasks/{handle.last.id}",
        "files": len(rows),
    }
    return jsonify(body), 202


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
