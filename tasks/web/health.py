"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio

from quart import Response, jsonify

from tasks.extension import Tasks

READY_CHECK_TIMEOUT = 2.0
"""Seconds the store gets to answer a readiness check."""


def _status(status: str, code: int) -> Response:
    response = jsonify({"status": status})
    response.status_code = code
    if code == 503:
        response.headers["Retry-After"] = "5"
    return response


async def healthz() -> Response:
    """The process is alive and serving HTTP."""
    return _status("ok", 200)


async def readyz(tasks: Tasks) -> Response:
    """200 when tasks are accepted and the store answers; 503 while starting or draining."""
    if not tasks.accepting:
        return _status("not accepting tasks (starting or draining)", 503)
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT):
            await tasks.store.count_queued()
    except Exception as exc:
        return _status(f"task store unavailable: {type(exc).__name__}", 503)
    return _status("ready", 200)
