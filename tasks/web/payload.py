"""Reading a JSON request body defensively: size, content type, encoding, syntax, depth."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from pydantic import BaseModel, ValidationError
from quart import Request

from tasks.web.errors import ApiError

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a request body."""


async def read_body(request: Request, limit: int, timeout: float | None) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed ``limit`` bytes.

    A client that sends it slower than ``timeout`` seconds in total gets 408.
    """
    length = request.headers.get("Content-Length")
    if length is not None:
        if not length.isdigit():
            raise ApiError(400, "invalid_content_length", "Content-Length must be a number")
        if int(length) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.body:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(408, "body_timeout", "the request body did not arrive in time") from None
    return b"".join(chunks)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body is larger than {limit} bytes")


def check_json_content_type(request: Request) -> None:
    """Raise 415 unless the body is declared as ``application/json`` (UTF-8)."""
    mimetype = request.mimetype
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if mimetype != "application/json" or charset not in ("utf-8", "utf8"):
        declared = request.headers.get("Content-Type") or "none"
        raise ApiError(
            415,
            "unsupported_media_type",
            f"the body must be JSON sent as Content-Type: application/json (got {declared})",
        )


def _refuse_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def parse_json(raw: bytes) -> Any:
    """Decode strict JSON (UTF-8, no NaN/Infinity, at most :data:`MAX_DEPTH` levels)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, "invalid_encoding", f"the body is not valid UTF-8 (byte {exc.start})"
        ) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_parse_float)
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    # Each level of nesting takes at least two bytes: a short body cannot be too deep.
    if len(raw) > 2 * MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise _too_deep()
    return value


def _too_deep() -> ApiError:
    return ApiError(400, "json_too_deep", f"the body is nested more than {MAX_DEPTH} levels deep")


def _depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


async def object_body(
    request: Request, model: type[BaseModel], limit: int, timeout: float | None
) -> Any:
    """The request's JSON object body as ``model``: each check above, then 400 unless it is
    an object, then :func:`validate`."""
    check_json_content_type(request)
    value = parse_json(await read_body(request, limit, timeout))
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    return validate(model, value, "body")


def validate(model: type[BaseModel], value: Any, what: str) -> Any:
    """``model.model_validate(value)``, with a 400 naming the first problem."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ApiError(400, "invalid_" + what, describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """A short message naming each invalid field."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:5]:
        location = ".".join(str(part) for part in error["loc"]) or "body"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)
