"""Error responses of the HTTP API: one JSON shape, one status code per failure."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify
from werkzeug.exceptions import HTTPException

from tasks.errors import (
    InvalidArgumentsError,
    InvalidStateError,
    NotAcceptingError,
    QueueFullError,
    ScheduleNotFoundError,
    StoreUnavailableError,
    TaskNotFoundError,
    TasksError,
    UnknownTaskError,
    WorkflowNotFoundError,
)

RETRY_AFTER_SECONDS = 5
"""``Retry-After`` sent with 429 and 503 answers."""


class ApiError(Exception):
    """A request the API refuses: becomes ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _retry_later() -> dict[str, str]:
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


_STATUS: list[tuple[type[TasksError], int, str]] = [
    (UnknownTaskError, 422, "unknown_task"),
    (InvalidArgumentsError, 422, "invalid_arguments"),
    (TaskNotFoundError, 404, "task_not_found"),
    (ScheduleNotFoundError, 404, "schedule_not_found"),
    (WorkflowNotFoundError, 404, "workflow_not_found"),
    (InvalidStateError, 409, "invalid_state"),
    (QueueFullError, 429, "queue_full"),
    (NotAcceptingError, 503, "not_accepting"),
    (StoreUnavailableError, 503, "store_unavailable"),
]
"""Engine errors a client can cause or wait out; anything else is a server error (500)."""

HANDLED_ERRORS: tuple[type[TasksError], ...] = tuple(error for error, _, _ in _STATUS)


def api_error(exc: TasksError) -> ApiError:
    """The API answer for an engine error (one of :data:`HANDLED_ERRORS`)."""
    for error_type, status, code in _STATUS:
        if isinstance(exc, error_type):
            headers = _retry_later() if status in (429, 503) else None
            return ApiError(status, code, str(exc), headers)
    raise TypeError(f"no HTTP mapping for {type(exc).__name__}") from exc


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """A JSON error response."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def render_api_error(exc: ApiError) -> Response:
    """Error handler for :class:`ApiError`."""
    return error_response(exc.status, exc.code, exc.message, exc.headers)


def render_tasks_error(exc: TasksError) -> Response:
    """Error handler for the engine errors in :data:`HANDLED_ERRORS`."""
    return render_api_error(api_error(exc))


def render_http_exception(exc: HTTPException) -> Response:
    """Werkzeug's HTTP errors (404 route, 405 method...) in the API's JSON shape."""
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_").replace("'", "")
    headers: dict[str, Any] = {}
    if exc.code == 405 and exc.response is None:
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    return error_response(status, code, exc.description or exc.name, headers)
