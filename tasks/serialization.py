"""JSON encoding of arguments and results: strict, so nothing unreadable is stored."""

from __future__ import annotations

import json
from typing import Any

from tasks.errors import PayloadError


def dumps(value: Any, what: str) -> str:
    """Encode ``value`` as compact JSON or raise :class:`PayloadError` naming ``what``.

    NaN and infinities are refused: they are not JSON and other readers choke on them.
    """
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadError(f"{what} must be JSON-serialisable: {exc}") from exc
