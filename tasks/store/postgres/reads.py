"""Queries of PostgreSQL: tasks by id, listings, counts, the next due time, cancel requests.

:class:`PostgresReads` is mixed into the store, which provides :meth:`_read`
(a query on a pooled connection, outside group commit).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from tasks.model import State, TaskRecord
from tasks.store import rows as shared_rows
from tasks.store.base import Activity, LimitUsage, QueueStats
from tasks.store.listing import Listings
from tasks.store.queries import load_queries
from tasks.store.rows import COLUMNS, record_from_row, summary_columns

_SQL = load_queries("postgres")
_GET = _SQL["get"].format(columns=COLUMNS)
_GET_MANY = _SQL["get_many"].format(columns=COLUMNS)


class PostgresReads(Listings):
    """The read half of :class:`~tasks.store.base.Store` for PostgreSQL."""

    async def _read(self, sql: str, *args: Any) -> builtins.list[Any]:
        """All rows of ``sql``; raises :class:`~tasks.errors.StoreUnavailableError`."""
        raise NotImplementedError

    async def get(self, task_id: str) -> TaskRecord | None:
        """One task by id; see :meth:`Store.get`."""
        rows = await self._read(_GET, task_id)
        return record_from_row(rows[0]) if rows else None

    async def get_many(self, task_ids: Sequence[str]) -> builtins.list[TaskRecord]:
        """Several tasks by id; see :meth:`Store.get_many`."""
        ids = builtins.list(task_ids)
        if not ids:
            return []
        rows = await self._read(_GET_MANY, ids)
        return [record_from_row(row) for row in rows]

    async def count_by_state(self) -> dict[State, int]:
        """Counts per state; see :meth:`Store.count_by_state`."""
        return await shared_rows.count_by_state(self._read)

    async def count_by_name(self) -> dict[str, dict[State, int]]:
        """Counts per name and state; see :meth:`Store.count_by_name`."""
        return await shared_rows.count_by_name(self._read)

    async def next_run_at(self, queues: Sequence[str], after: float) -> float | None:
        """The next due time; see :meth:`Store.next_run_at`."""
        rows = await self._read(_SQL["next_run_at"], builtins.list(queues), after)
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    async def cancel_requests(self, owner: str) -> builtins.list[str]:
        """Tasks asked to stop; see :meth:`Store.cancel_requests`."""
        rows = await self._read(_SQL["cancel_requests"], owner)
        return [row[0] for row in rows]

    async def limit_usage(self, record: TaskRecord) -> LimitUsage:
        """What holds a queued task back; see :meth:`Store.limit_usage`."""
        limits = record.limits
        [row] = await self._read(
            _SQL["limit_usage"], limits.concurrency_key, limits.rate_key, record.queue
        )
        reopens = None if row[2] is None else float(row[2])
        return LimitUsage(int(row[0]), int(row[1]), reopens, int(row[3]))

    async def queue_stats(self) -> builtins.list[QueueStats]:
        """Load per queue; see :meth:`Store.queue_stats`."""
        rows = await self._read(_SQL["queue_stats"])
        return [shared_rows.queue_stats_from_row(row) for row in rows]

    async def finished_by_queue(self, since: float) -> dict[str, int]:
        """Finished tasks per queue; see :meth:`Store.finished_by_queue`."""
        rows = await self._read(_SQL["finished_by_queue"], since)
        return {queue: count for queue, count in rows}

    async def activity(self, since: float, bucket: float) -> builtins.list[Activity]:
        """Finished tasks per time bucket; see :meth:`Store.activity`."""
        rows = await self._read(_SQL["activity"], since, bucket)
        return shared_rows.activity_from_rows(rows, since, bucket)

    async def count_queued(self) -> int:
        """Backlog size; see :meth:`Store.count_queued`."""
        return await shared_rows.count_queued(self._read)

    # octet_length of a stored (possibly compressed) text reads its size, not its content.
    _summary_columns = summary_columns("octet_length({})")

    async def _select(
        self,
        columns: str,
        *,
        state: State | None = None,
        name: str | None = None,
        queue: str | None = None,
        cursor: str | None = None,
        after: str | None = None,
        task_id: str | None = None,
        ids: Sequence[str] | None = None,
        limit: int = 1,
    ) -> Sequence[Any]:
        """Rows for :class:`~tasks.store.listing.Listings`, newest first (oldest first
        with ``after``)."""
        where: builtins.list[str] = []
        params: builtins.list[Any] = []
        for condition, value in (
            ("state = ${}", None if state is None else state.value),
            ("name = ${}", name),
            ("queue = ${}", queue),
            ("id < ${}", cursor),
            ("id > ${}", after),
            ("id = ${}", task_id),
            ("id = ANY(${}::text[])", None if ids is None else builtins.list(ids)),
        ):
            if value is not None:
                params.append(value)
                where.append(condition.format(len(params)))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        params.append(max(limit, 0))
        order = "ASC" if after is not None else "DESC"
        return await self._read(
            f"SELECT {columns} FROM tasks {clause} ORDER BY id {order} LIMIT ${len(params)}",
            *params,
        )
