"""Row layout shared by the SQL backends.

The columns every query selects, decoding such a row into a
:class:`~tasks.model.TaskRecord` (or, for listings, a
:class:`~tasks.summary.TaskSummary`), and the count queries whose SQL is the
same on every backend.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tasks.model import NO_LIMITS, ErrorInfo, Progress, RowLimits, State, TaskRecord
from tasks.store.base import Activity, QueueStats
from tasks.summary import PREVIEW_CHARS, TEXT_CHARS, Excerpt, TaskSummary, clip

Reader = Callable[[str], Awaitable[Sequence[Any]]]
"""A backend's way to run a parameterless query and fetch every row."""

COLUMNS = (
    "id, name, queue, state, args, kwargs, priority, attempts, max_attempts, run_at,"
    " created_at, started_at, finished_at, progress_current, progress_total,"
    " progress_message, result, error_type, error_message, error_traceback,"
    " idempotency_key, lease_owner, lease_expires_at, version, errors, snoozes, timeout,"
    " concurrency_key, concurrency_limit, rate_key, rate_limit, rate_period, unique_key,"
    " trace_context, workflow_id, blockers, receives"
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
    progress = _progress(row[13], row[14], row[15])
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
        errors=_errors(row[24]),
        snoozes=row[25],
        timeout=row[26],
        limits=_limits(row),
        trace_context=row[33],
        workflow_id=row[34],
        blockers=row[35],
        receives=row[36],
    )


def _limits(row: Sequence[Any]) -> RowLimits:
    if row[27] is None and row[29] is None and row[32] is None:
        return NO_LIMITS
    period = None if row[31] is None else float(row[31])
    return RowLimits(row[27], row[28], row[29], row[30], period, row[32])


def claimed_records(rows: Sequence[Sequence[Any]]) -> list[TaskRecord]:
    """Claimed rows as records, in claim order (priority, then ``run_at``, then id)."""
    records = [record_from_row(row) for row in rows]
    records.sort(key=lambda r: (-r.priority, r.run_at, r.id))
    return records


def _errors(text: str) -> list[ErrorInfo]:
    if text == "[]":
        return []
    return [
        ErrorInfo(e["type"], e["message"], e.get("traceback"), e.get("at"), e.get("attempt"))
        for e in json.loads(text)
    ]


def error_entry(error: ErrorInfo | None, now: float) -> str | None:
    """An error as one JSON entry of the ``errors`` history (None without one).

    ``at`` defaults to ``now`` (the batch clock); the finish SQL adds the
    ``attempt`` from the row itself. Texts are stored as given: callers pass
    them through their backend's cleaning first.
    """
    if error is None:
        return None
    at = now if error.at is None else error.at
    entry = {"type": error.type, "message": error.message, "traceback": error.traceback}
    return json.dumps({**entry, "at": at}, ensure_ascii=False)


def _whole(value: float) -> float:
    """Whole floats as ints (SQL REAL columns give back ``3.0`` for a stored ``3``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _progress(current: float | None, total: float | None, message: str | None) -> Progress:
    return Progress(_whole(current or 0), None if total is None else _whole(total), message)


def summary_columns(octets: str) -> str:
    """The columns :func:`summary_from_row` expects, in order.

    ``octets`` is the backend's SQL for the size in bytes of a text column,
    with ``{}`` standing for the column (SQLite: ``length(CAST({} AS BLOB))``,
    PostgreSQL: ``octet_length({})``). Payloads are read as that size plus
    their first :data:`~tasks.summary.PREVIEW_CHARS` characters, free texts as
    their first ``TEXT_CHARS + 1`` characters: the database never hands over a
    whole argument list or result.
    """
    text = f"1, {TEXT_CHARS + 1}"
    payloads = ", ".join(
        f"{octets.format(column)}, substr({column}, 1, {PREVIEW_CHARS})"
        for column in ("args", "kwargs", "result")
    )
    return (
        "id, name, queue, state, priority, attempts, max_attempts, run_at, created_at,"
        " started_at, finished_at, progress_current, progress_total,"
        f" substr(progress_message, {text}), substr(error_type, {text}),"
        f" substr(error_message, {text}), substr(idempotency_key, {text}), version, " + payloads
    )


def summary_from_row(row: Sequence[Any]) -> TaskSummary:
    """Build a :class:`TaskSummary` from a row selected with :func:`summary_columns`."""
    error = None
    if row[14] is not None:
        error = ErrorInfo(clip(row[14]) or "", clip(row[15]) or "")
    return TaskSummary(
        id=row[0],
        name=row[1],
        queue=row[2],
        state=State(row[3]),
        priority=row[4],
        attempts=row[5],
        max_attempts=row[6],
        run_at=row[7],
        created_at=row[8],
        started_at=row[9],
        finished_at=row[10],
        progress=_progress(row[11], row[12], clip(row[13])),
        error=error,
        idempotency_key=clip(row[16]),
        version=row[17],
        args=Excerpt(row[18], row[19]),
        kwargs=Excerpt(row[20], row[21]),
        result=None if row[22] is None else Excerpt(row[22], row[23]),
    )


def page_cursor(items: Sequence[TaskRecord | TaskSummary], fetched: int, limit: int) -> str | None:
    """A page's ``next_cursor``: its last id when the query (asked for ``limit + 1`` rows)
    found more than ``limit``."""
    return items[-1].id if fetched > limit and items else None


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


def queue_stats_from_row(row: Sequence[Any]) -> QueueStats:
    """A ``(queue, queued, running, oldest_run_at)`` row as :class:`QueueStats`."""
    oldest = None if row[3] is None else float(row[3])
    return QueueStats(row[0], int(row[1]), int(row[2]), oldest)


def activity_from_rows(
    rows: Sequence[Sequence[Any]], since: float, bucket: float
) -> list[Activity]:
    """``(bucket, finished, failed, mean latency, max latency)`` rows as :class:`Activity`."""
    return [
        Activity(
            start=since + int(row[0]) * bucket,
            finished=int(row[1]),
            failed=int(row[2] or 0),
            latency_mean=None if row[3] is None else float(row[3]),
            latency_max=None if row[4] is None else float(row[4]),
        )
        for row in rows
    ]
