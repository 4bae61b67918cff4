"""Shared HTTP plumbing of the scenario endpoints: JSON bodies, 202 answers, JSON errors."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from tasks import InvalidArgumentsError, NotAcceptingError, QueueFullError, TaskHandle
from tasks.web.errors import (
    RETRY_AFTER_SECONDS,
    ApiError,
    render_api_error,
    render_http_exception,
)

__all__ = ["ApiError", "accepted", "install_error_handlers", "json_object"]


def accepted(handle: TaskHandle[Any], **extra: Any) -> tuple[Response, int, dict[str, str]]:
    """``202 Accepted`` with the task id and ``Location: /tasks/<id>``."""
    url = f"/tasks/{handle.id}"
    return jsonify({"id": handle.id, "url": url, **extra}), 202, {"Location": url}


async def json_object() -> dict[str, Any]:
    """The request's JSON object body; an empty body counts as ``{}``."""
    if not await request.get_data():
        return {}
    body = await request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the request body must be a JSON object")
    return body


def number_field(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    """``body[name]`` as a number within ``[low, high]``, or ``default`` when absent."""
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ApiError(400, "invalid_field", f"{name} must be a number from {low:g} to {high:g}")
    return float(value)


def int_field(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """``body[name]`` as an integer within ``[low, high]``, or ``default`` when absent."""
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, "invalid_field", f"{name} must be an integer from {low} to {high}")
    return value


def text_field(body: dict[str, Any], name: str, max_length: int) -> str:
    """``body[name]`` as a non-empty string of at most ``max_length`` characters."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "invalid_field", f"{name} is required and must be a non-empty string")
    if len(value) > max_length:
        raise ApiError(400, "invalid_field", f"{name} must be at most {max_length} characters")
    return value.strip()


def install_error_handlers(blueprint: Blueprint) -> None:
    """Answer the blueprint's errors as JSON, with the task API's status codes.

    Bad input is 400, a full backlog 429 and a draining app 503, both with
    ``Retry-After``.
    """

    @blueprint.errorhandler(ApiError)
    async def api_error(error: ApiError) -> Response:
        return render_api_error(error)

    @blueprint.errorhandler(QueueFullError)
    async def queue_full(error: QueueFullError) -> Response:
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return render_api_error(ApiError(429, "queue_full", "queue is full, try later", retry))

    @blueprint.errorhandler(NotAcceptingError)
    async def not_accepting(error: NotAcceptingError) -> Response:
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return render_api_error(ApiError(503, "not_accepting", str(error), retry))

    @blueprint.errorhandler(InvalidArgumentsError)
    async def invalid_arguments(error: InvalidArgumentsError) -> Response:
        return render_api_error(ApiError(400, "invalid_arguments", str(error)))

    @blueprint.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        return render_http_exception(error)
