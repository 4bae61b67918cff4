"""The claim of PostgreSQL: the fast path, and the limited path under the fleet's limits.

The fast path is one statement: tasks without limits, locked with ``SKIP
LOCKED``, and none while a due task with limits waits in the claimed queues.
The limited path (due tasks with limits, or a capped queue) first takes a
transaction-scoped advisory lock that every limited claim of every process
takes: claims that count usage run one at a time across the fleet, and each
sees the claims and outcomes committed before it. Under it the usage is read,
candidates are admitted with :mod:`tasks.store.admission`, claimed by id, and
the starts of rate-limited tasks recorded. Rate windows use the server's
clock, so hosts with different clocks share one window; the limited path
stamps ``started_at`` and leases with that clock too (on one host it is the
app's clock).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tasks.model import TaskRecord
from tasks.store.admission import ROUNDS, Admission, Candidate, Usage, merge
from tasks.store.base import Claimed
from tasks.store.postgres.writes import WAITED, Tx
from tasks.store.queries import load_queries
from tasks.store.rows import COLUMNS, claimed_records

_SQL = load_queries("postgres")
_LIMITS_LOCK = 0x7461736B6C  # held by each limited claim until its transaction ends
_T_COLUMNS = ", ".join(f"tasks.{c.strip()}" for c in COLUMNS.split(","))
# One queue (the usual case) walks tasks_claimable in order and stops after
# LIMIT rows; "queue = ANY(...)" cannot use the index order and sorts every
# due task of those queues.
_ONE_QUEUE = "queue = $4::text"
_QUEUES = "queue = ANY($4::text[])"


def _claim_sql(queue_match: str, guarded: bool) -> str:
    guard = _SQL["claim_guard"].format(queue_match=queue_match) if guarded else ""
    return _SQL["claim"].format(
        queue_match=queue_match, guard=guard, columns=_T_COLUMNS, waited=WAITED
    )


# (one queue?, guarded?) -> the fast path's statement
_CLAIMS = {
    (one, guarded): _claim_sql(_ONE_QUEUE if one else _QUEUES, guarded)
    for one in (True, False)
    for guarded in (True, False)
}
_CLAIM_IDS = _SQL["claim_ids"].format(columns=COLUMNS)
_AFTER = "AND (priority < $6 OR (priority = $6 AND (run_at > $7 OR (run_at = $7 AND id > $8))))"
_CANDIDATES = _SQL["limited_candidates"].format(after="")
_CANDIDATES_AFTER = _SQL["limited_candidates"].format(after=_AFTER)


async def apply_claim(
    tx: Tx,
    owner: str,
    queues: list[str],
    limit: int,
    lease_seconds: float,
    caps: Mapping[str, int],
) -> Claimed:
    """Lease up to ``limit`` due tasks of ``queues`` to ``owner``, in claim order.

    While ``tx.held`` is active the due limited tasks are known to be held
    back and tasks without limits are claimed past them (see :mod:`.held`).
    """
    if limit <= 0:
        return Claimed([])
    caps = {q: caps[q] for q in queues if q in caps}
    if not caps:
        skip = tx.held.active(tx.now)
        one = len(queues) == 1
        sql = _CLAIMS[one, not skip]
        queue_arg = queues[0] if one else queues
        rows = await tx.conn.fetch(sql, tx.now, owner, tx.now + lease_seconds, queue_arg, limit)
        if rows or skip or await tx.conn.fetchval(_SQL["limited_due"], queues, tx.now) is None:
            return Claimed(claimed_records(rows))
    return await _claim_limited(tx, owner, queues, limit, lease_seconds, caps)


async def _claim_limited(
    tx: Tx,
    owner: str,
    queues: list[str],
    limit: int,
    lease_seconds: float,
    caps: Mapping[str, int],
) -> Claimed:
    conn = tx.conn
    await conn.execute(_SQL["advisory_lock"], _LIMITS_LOCK)
    clock = float(await conn.fetchval(_SQL["server_clock"]))
    await conn.execute(_SQL["rate_prune"], clock)
    usage = await read_usage(tx, queues, caps, clock)
    open_queues = usage.open_queues(queues)
    if not open_queues:
        return Claimed([])
    queue_free = dict(usage.queue_free)  # admission counts into usage; merge counts again
    admission = Admission(usage)
    limited = await _admit_limited(tx, admission, open_queues, limit)
    unlimited: list[Candidate] = []
    for queue in open_queues:
        room = min(limit, queue_free.get(queue, limit))
        rows = await conn.fetch(_SQL["unlimited_candidates"], tx.now, queue, room)
        unlimited += [Candidate(*row) for row in rows]
    chosen = merge(limited, unlimited, queue_free, limit)
    records: list[TaskRecord] = []
    if chosen:
        ids = [c.id for c in chosen]
        rows = await conn.fetch(_CLAIM_IDS, owner, lease_seconds, ids)
        records = claimed_records(rows)
        rated = [r for r in records if r.limits.rate_key is not None]
        if rated:
            await conn.execute(
                _SQL["rate_start"],
                [r.limits.rate_key for r in rated],
                [(r.started_at or clock) + (r.limits.rate_period or 0.0) for r in rated],
                [r.limits.rate_limit for r in rated],
            )
    reopens = None
    if admission.spent:
        reopens = await conn.fetchval(_SQL["rate_reopens"], clock, sorted(admission.spent))
        if reopens is not None:  # the server's clock, told in this process's clock
            reopens = float(reopens) - clock + tx.now
    if not caps and not limited:
        tx.held.hold(tx.now, reopens)
    return Claimed(records, reopens)


async def read_usage(tx: Tx, queues: Sequence[str], caps: Mapping[str, int], clock: float) -> Usage:
    """What the limits have taken now (see :class:`~tasks.store.admission.Usage`)."""
    running = await tx.conn.fetch(_SQL["running_keys"])
    started = await tx.conn.fetch(_SQL["rate_started"], clock)
    capped = [q for q in queues if q in caps]
    queue_running: dict[str, int] = {}
    if capped:
        rows = await tx.conn.fetch(_SQL["queue_running"], capped)
        queue_running = {row[0]: int(row[1]) for row in rows}
    return Usage.read([tuple(r) for r in running], [tuple(r) for r in started], queue_running, caps)


async def _admit_limited(
    tx: Tx, admission: Admission, queues: list[str], limit: int
) -> list[Candidate]:
    """Up to ``limit`` limited candidates admitted, reading past full keys in a few rounds."""
    admitted: list[Candidate] = []
    cursor: tuple[object, ...] = ()
    for _ in range(ROUNDS):
        size = limit * 2 + 16
        args = (queues, tx.now, sorted(admission.full), sorted(admission.spent), size)
        if cursor:
            rows = await tx.conn.fetch(_CANDIDATES_AFTER, *args, *cursor)
        else:
            rows = await tx.conn.fetch(_CANDIDATES, *args)
        for row in rows:
            candidate = Candidate(*row)
            if admission.offer(candidate):
                admitted.append(candidate)
                if len(admitted) >= limit:
                    return admitted
        if len(rows) < size:
            break
        last = rows[-1]
        cursor = (last[2], last[3], last[0])
    return admitted
