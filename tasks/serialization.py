"""JSON encoding of arguments and results: strict, so nothing unreadable is stored."""

from __future__ import annotations

import json
from typing import Any

from tasks.errors import PayloadError

_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)
"""One shared strict encoder: ``json.dumps`` with options builds a new one per call."""


def dumps(value: Any, what: str) -> str:
    """Encode ``value`` as compact JSON or raise :class:`PayloadError` naming ``what``.

    NaN and infinities are refused: they are not JSON and other readers choke on them.
    """
    if value is None:  # the common no-argument / no-result cases skip the encoder
        return "null"
    if not value and type(value) in (list, dict, tuple):
        return "{}" if type(value) is dict else "[]"
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"{what} must be JSON-serialisable: {exc}") from exc
