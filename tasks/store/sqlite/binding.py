"""Values bound into SQLite statements: placeholders, chunks, storable text and numbers.

SQLite limits the number of bound parameters per statement, so id lists go
in chunks of :data:`CHUNK` with one ``?`` each (:func:`marks`). Text from
task code is made valid UTF-8 and progress numbers are bound as floats, so
that one odd value cannot fail the batch it shares a transaction with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from tasks.model import ErrorInfo

_T = TypeVar("_T")

CHUNK = 500
"""Ids per statement in chunked ``IN`` lists and ``VALUES`` rows."""


def marks(values: Sequence[Any]) -> str:
    """One ``?`` per value, comma-separated, for an ``IN`` list."""
    return ", ".join("?" * len(values))


def chunks(values: Sequence[_T]) -> list[Sequence[_T]]:
    """``values`` in slices of at most :data:`CHUNK`."""
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def text(value: str | None) -> str | None:
    """``value`` as valid UTF-8: lone surrogates (from undecodable file names, say)
    become ``?`` rather than failing the whole batch."""
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "replace").decode("utf-8")


def number(value: float | None) -> float | None:
    """Progress numbers go to REAL columns: a huge int must not overflow the binding."""
    return None if value is None else float(value)


def error_columns(error: ErrorInfo | None) -> tuple[str | None, str | None, str | None]:
    """An error's type, message and traceback as storable text (all None without one)."""
    if error is None:
        return None, None, None
    return text(error.type), text(error.message), text(error.traceback)
