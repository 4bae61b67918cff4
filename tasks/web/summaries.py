"""Task summaries on the wire: one as JSON, and a listing page bounded in bytes."""

from __future__ import annotations

import json
from collections.abc import Callable

from tasks.summary import SummaryPage, TaskSummary

# ASCII output (escapes for the rest): a text's length is its size in bytes.
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


def summary_json(summary: TaskSummary, url: str) -> str:
    """One ``TaskSummaryOut`` as JSON; ``url`` is where the full task is."""
    return _ENCODER.encode({**summary.to_dict(), "url": url})


def page_json(page: SummaryPage, location: Callable[[str], str], max_bytes: int) -> str:
    """A ``TaskPage`` body of at most ``max_bytes`` bytes.

    Summaries are added newest first while they fit; when one does not, the
    page ends before it and ``next_cursor`` points there, so paging goes on
    where this page stopped. The first summary is always included (it is a few
    kilobytes at most), so paging always makes progress.
    """
    items: list[str] = []
    size = len('{"next_cursor":,"tasks":[]}') + len('"' + "f" * 32 + '"')
    next_cursor = page.next_cursor
    for summary in page.tasks:
        item = summary_json(summary, location(summary.id))
        size += len(item) + 1
        if items and size > max_bytes:
            next_cursor = page.tasks[len(items) - 1].id
            break
        items.append(item)
    return f'{{"next_cursor":{_ENCODER.encode(next_cursor)},"tasks":[{",".join(items)}]}}'
