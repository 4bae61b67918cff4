"""JSON encoding of arguments and results: strict, so nothing unreadable is stored."""

from __future__ import annotations

import json
from typing import Any

from tasks.errors import PayloadError, UnstorableResultError

_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)
"""One shared strict encoder: ``json.dumps`` with options builds a new one per call."""


def dumps(value: Any, what: str) -> str:
    """Encode ``value`` as compact JSON or raise :class:`PayloadError` naming ``what``.

    NaN and infinities are refused: they are not JSON and other readers choke on
    them. So is text with a lone surrogate (``"\\ud800"``), which is not valid
    Unicode: no backend can store it.
    """
    if value is None:  # the common no-argument / no-result cases skip the encoder
        return "null"
    if not value and type(value) in (list, dict, tuple):
        return "{}" if type(value) is dict else "[]"
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"{what} must be JSON-serialisable: {exc}") from exc
    if not text.isascii():
        _check_unicode(text, what)
    return text


def encode_result(value: Any, task_name: str) -> str:
    """A task's return value as JSON; :class:`UnstorableResultError` if it cannot be stored."""
    try:
        return dumps(value, f"the result of task {task_name}")
    except PayloadError as exc:
        raise UnstorableResultError(
            f"{exc}; the task ran to its end, but a result that cannot be stored fails it"
        ) from None


def check_text(value: str, what: str) -> None:
    """Raise :class:`PayloadError` unless ``value`` is text every backend can store.

    That is valid Unicode (no lone surrogate) without NUL characters, which
    PostgreSQL's ``text`` refuses. Used for idempotency keys and queue names.
    """
    if "\x00" in value:
        raise PayloadError(f"{what} must not contain a NUL character")
    if not value.isascii():
        _check_unicode(value, what)


def _check_unicode(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise PayloadError(
            f"{what} contains {bad!a}, a lone surrogate: not valid Unicode, so it cannot be"
            " stored (encode binary data as base64 or hex text)"
        ) from None
