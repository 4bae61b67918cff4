"""Row layout shared by the SQL backends.

The columns every query selects, decoding such a row into a
:class:`~tasks.model.TaskRecord`, and the count queries whose SQL is the same
on every backend.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tasks.model import ErrorInfo, Progress, State, TaskRecord

Reader = Callable[[str], Awaitable[Sequence[Any]]]
"""A backend's way to run a parameterless query and fetch every row."""

COLUMNS = (
    "id, name, queue, state, args, kwargs, priority, attempts, max_attempts, run_at,"
    " created_at, started_at, finished_at, progress_current, progress_total,"
    " progress_message, result, error_type, error_message, error_traceback,"
    " idempotency_key, lease_owner, lease_expires_at, version"
)
"""The columns :func:`record_from_row` expects, in order."""


def _loads(text: str) -> Any:
    """``json.loads`` with the common empty values short-cut (a fresh object each time)."""
    if text == "[]":
        return []
    if text == "{}":
        return {}
    if text == "null":
        return None
    return json.loads(text)


def record_from_row(row: Sequence[Any]) -> TaskRecord:
    """Build a :class:`TaskRecord` from a row selected with :data:`COLUMNS`."""
    error = None
    if row[17] is not None:
        error = ErrorInfo(row[17], row[18] or "", row[19])
    progress = Progress(row[13] or 0, row[14], row[15])
    current = progress.current
    if isinstance(current, float) and current.is_integer():
        progress = Progress(int(current), progress.total, progress.message)
    total = progress.total
    if isinstance(total, float) and total.is_integer():
        progress = Progress(progress.current, int(total), progress.message)
    return TaskRecord(
        id=row[0],
        name=row[1],
        queue=row[2],
        state=State(row[3]),
        args=_loads(row[4]),
        kwargs=_loads(row[5]),
        priority=row[6],
        attempts=row[7],
        max_attempts=row[8],
        run_at=row[9],
        created_at=row[10],
        started_at=row[11],
        finished_at=row[12],
        progress=progress,
        result=None if row[16] is None else _loads(row[16]),
        error=error,
        idempotency_key=row[20],
        lease_owner=row[21],
        lease_expires_at=row[22],
        version=row[23],
    )


async def count_by_state(read: Reader) -> dict[State, int]:
    """How many tasks are in each state (every state present)."""
    counts = dict.fromkeys(State, 0)
    for state, count in await read("SELECT state, COUNT(*) FROM tasks GROUP BY state"):
        counts[State(state)] = count
    return counts


async def count_by_name(read: Reader) -> dict[str, dict[State, int]]:
    """Per task name, how many tasks are in each state."""
    counts: dict[str, dict[State, int]] = {}
    for name, state, count in await read(
        "SELECT name, state, COUNT(*) FROM tasks GROUP BY name, state"
    ):
        counts.setdefault(name, dict.fromkeys(State, 0))[State(state)] = count
    return counts


async def count_queued(read: Reader) -> int:
    """How many tasks wait in the queue."""
    rows = await read("SELECT COUNT(*) FROM tasks WHERE state = 'queued'")
    return int(rows[0][0])
