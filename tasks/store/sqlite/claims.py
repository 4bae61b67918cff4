"""The claim of SQLite: the fast path, and the limited path under the fleet's limits.

Runs inside the batch's transaction, which holds the database's write lock:
no other process can claim or finish between the usage it reads and the
claim it writes, so each limit is checked and taken atomically.

Without due limited tasks and without a capped queue the claim is the one
``UPDATE`` it always was (tasks without limits only). Otherwise it reads the
usage, picks candidates with :mod:`tasks.store.admission`, claims them by id
and records the starts of rate-limited ones.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Mapping

from tasks.model import TaskRecord
from tasks.store.admission import ROUNDS, Admission, Candidate, Usage, merge
from tasks.store.base import Claimed
from tasks.store.queries import load_queries
from tasks.store.rows import COLUMNS, claimed_records
from tasks.store.sqlite.binding import marks

_SQL = load_queries("sqlite")
_AFTER = "AND (priority < ? OR (priority = ? AND (run_at > ? OR (run_at = ? AND id > ?))))"


def claim(
    conn: sqlite3.Connection,
    owner: str,
    queues: tuple[str, ...],
    limit: int,
    lease_seconds: float,
    caps: Mapping[str, int],
    *,
    now: float,
) -> Claimed:
    """Lease up to ``limit`` due tasks of ``queues`` to ``owner``, in claim order."""
    if limit <= 0:
        return Claimed([])
    caps = {q: caps[q] for q in queues if q in caps}
    if not caps:
        params = (now, owner, now + lease_seconds, now, *queues, *queues, now, limit)
        rows = conn.execute(_sql("claim", len(queues)), params).fetchall()
        if (
            rows
            or conn.execute(_sql("limited_due", len(queues)), (*queues, now)).fetchone() is None
        ):
            return Claimed(claimed_records(rows))
    return _claim_limited(conn, owner, queues, limit, lease_seconds, caps, now)


def _claim_limited(
    conn: sqlite3.Connection,
    owner: str,
    queues: tuple[str, ...],
    limit: int,
    lease_seconds: float,
    caps: Mapping[str, int],
    now: float,
) -> Claimed:
    conn.execute(_SQL["rate_prune"], (now,))
    usage = read_usage(conn, queues, caps, now)
    open_queues = usage.open_queues(queues)
    if not open_queues:
        return Claimed([])
    queue_free = dict(usage.queue_free)  # admission counts into usage; merge counts again
    admission = Admission(usage)
    limited = _admit_limited(conn, admission, open_queues, limit, now)
    unlimited = _unlimited(conn, open_queues, queue_free, limit, now)
    chosen = merge(limited, unlimited, queue_free, limit)
    records: list[TaskRecord] = []
    if chosen:
        ids = [c.id for c in chosen]
        rows = conn.execute(
            _sql("claim_ids", len(ids)), (now, owner, now + lease_seconds, *ids)
        ).fetchall()
        records = claimed_records(rows)
        starts = [
            (r.limits.rate_key, now + r.limits.rate_period, r.limits.rate_limit)
            for r in records
            if r.limits.rate_key is not None and r.limits.rate_period is not None
        ]
        conn.executemany(_SQL["rate_start"], starts)
    spent = sorted(admission.spent)
    reopens = None
    if spent:
        [(reopens,)] = conn.execute(_sql("rate_reopens", len(spent)), (now, *spent)).fetchall()
    return Claimed(records, reopens)


def read_usage(
    conn: sqlite3.Connection, queues: tuple[str, ...], caps: Mapping[str, int], now: float
) -> Usage:
    """What the limits have taken now (see :class:`~tasks.store.admission.Usage`)."""
    running = conn.execute(_SQL["running_keys"]).fetchall()
    started = conn.execute(_SQL["rate_started"], (now,)).fetchall()
    capped = [q for q in queues if q in caps]
    queue_running: dict[str, int] = {}
    if capped:
        rows = conn.execute(_sql("queue_running", len(capped)), capped).fetchall()
        queue_running = {queue: count for queue, count in rows}
    return Usage.read(running, started, queue_running, caps)


def _admit_limited(
    conn: sqlite3.Connection, admission: Admission, queues: list[str], limit: int, now: float
) -> list[Candidate]:
    """Up to ``limit`` limited candidates admitted, reading past full keys in a few rounds."""
    admitted: list[Candidate] = []
    cursor: tuple[object, ...] = ()
    for _ in range(ROUNDS):
        size = limit * 2 + 16
        sql = _SQL["limited_candidates"].format(marks=marks(queues), after=_AFTER if cursor else "")
        params = (
            *queues,
            now,
            json.dumps(sorted(admission.full)),
            json.dumps(sorted(admission.spent)),
            *cursor,
            size,
        )
        rows = conn.execute(sql, params).fetchall()
        for row in rows:
            candidate = Candidate(*row)
            if admission.offer(candidate):
                admitted.append(candidate)
                if len(admitted) >= limit:
                    return admitted
        if len(rows) < size:
            break
        last = rows[-1]
        cursor = (last[2], last[2], last[3], last[3], last[0])
    return admitted


def _unlimited(
    conn: sqlite3.Connection,
    queues: list[str],
    queue_free: Mapping[str, int],
    limit: int,
    now: float,
) -> list[Candidate]:
    """Candidates without limits: up to ``limit`` from the uncapped queues, and up to
    each capped queue's free slots from it (``queue_free`` holds the capped ones)."""
    found: list[Candidate] = []
    uncapped = [q for q in queues if q not in queue_free]
    if uncapped:
        rows = conn.execute(_sql("unlimited_candidates", len(uncapped)), (now, *uncapped, limit))
        found += [Candidate(*row) for row in rows]
    for queue in queues:
        if queue in queue_free:
            room = min(limit, queue_free[queue])
            rows = conn.execute(_sql("unlimited_candidates", 1), (now, queue, room))
            found += [Candidate(*row) for row in rows]
    return found


@functools.lru_cache(maxsize=128)
def _sql(name: str, count: int) -> str:
    return _SQL[name].format(marks=marks(range(count)), columns=COLUMNS)
