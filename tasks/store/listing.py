"""Newest-first listings, shared by the SQL backends: pages of records or of summaries."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from tasks.model import State
from tasks.store.base import Page
from tasks.store.rows import COLUMNS, page_cursor, record_from_row, summary_from_row
from tasks.summary import SummaryPage, TaskSummary

MAX_IDS = 500
"""Most ids :meth:`Listings.get_summaries` takes in one call."""


class Listings:
    """:meth:`Store.list`, :meth:`Store.list_summaries` and :meth:`Store.get_summary`.

    A backend mixes this in and provides :meth:`_select` (its SQL dialect) and
    ``_summary_columns`` (:func:`~tasks.store.rows.summary_columns` in that dialect).
    """

    _summary_columns: str

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
        """``columns`` of up to ``limit`` matching rows, newest (highest id) first;
        with ``after``, the oldest rows newer than it, oldest first."""
        raise NotImplementedError

    async def list(
        self,
        *,
        state: State | None = None,
        name: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Tasks newest first; see :meth:`Store.list`."""
        # One row more than the page: it tells whether a next page exists.
        rows = await self._select(
            COLUMNS, state=state, name=name, queue=queue, cursor=cursor, limit=limit + 1
        )
        records = [record_from_row(row) for row in rows[:limit]]
        return Page(records, page_cursor(records, len(rows), limit))

    async def list_summaries(
        self,
        *,
        state: State | None = None,
        name: str | None = None,
        queue: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        after: str | None = None,
    ) -> SummaryPage:
        """Task summaries newest first; see :meth:`Store.list_summaries`."""
        rows = await self._select(
            self._summary_columns,
            state=state,
            name=name,
            queue=queue,
            cursor=cursor,
            after=after,
            limit=limit + 1,
        )
        summaries = [summary_from_row(row) for row in rows[:limit]]
        if after is None:
            return SummaryPage(summaries, page_cursor(summaries, len(rows), limit))
        # Read oldest first from ``after``; the newest of the page is where newer ones start.
        newer = summaries[-1].id if len(rows) > limit else None
        return SummaryPage(summaries[::-1], newer)

    async def get_summaries(self, task_ids: Sequence[str]) -> builtins.list[TaskSummary]:
        """Summaries by id; see :meth:`Store.get_summaries`."""
        ids = builtins.list(dict.fromkeys(task_ids))
        if len(ids) > MAX_IDS:
            raise ValueError(f"at most {MAX_IDS} ids at a time, not {len(ids)}")
        if not ids:
            return []
        rows = await self._select(self._summary_columns, ids=ids, limit=len(ids))
        return [summary_from_row(row) for row in rows]

    async def get_summary(self, task_id: str) -> TaskSummary | None:
        """One task's summary; see :meth:`Store.get_summary`."""
        rows = await self._select(self._summary_columns, task_id=task_id)
        return summary_from_row(rows[0]) if rows else None
