"""Task summaries: a view of a task whose size does not grow with its payloads.

Listings and live events carry summaries; the full record (arguments, result,
traceback) is read one task at a time. A summary keeps every scalar field of
the record, the size and first characters of the args, kwargs and result JSON,
and clips free-text fields, so it stays within a few kilobytes whatever a task
was given or returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasks.model import TERMINAL_STATES, ErrorInfo, Progress, State, iso

PREVIEW_CHARS = 200
"""Characters of the args, kwargs and result JSON text a summary keeps."""
TEXT_CHARS = 200
"""Longest progress message, error type, error message or idempotency key in a summary."""
ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"


@dataclass(frozen=True, slots=True)
class Excerpt:
    """The start of a stored JSON text and its full size.

    ``preview`` is the first :data:`PREVIEW_CHARS` characters of the JSON text
    (not itself valid JSON when ``truncated``); ``size`` is the whole text's
    length in UTF-8 bytes.
    """

    size: int
    preview: str

    @property
    def truncated(self) -> bool:
        """True when ``preview`` is not the whole text."""
        return len(self.preview.encode("utf-8", "surrogatepass")) < self.size

    def to_dict(self) -> dict[str, Any]:
        """``{"bytes", "preview", "truncated"}``."""
        return {"bytes": self.size, "preview": self.preview, "truncated": self.truncated}


def clip(text: str | None) -> str | None:
    """``text`` cut to :data:`TEXT_CHARS` characters, ending in an ellipsis when cut.

    Callers select ``TEXT_CHARS + 1`` characters so that a cut can be told apart
    from a text that was exactly ``TEXT_CHARS`` long.
    """
    if text is None or len(text) <= TEXT_CHARS:
        return text
    return text[: TEXT_CHARS - 1] + ELLIPSIS


@dataclass(slots=True)
class TaskSummary:
    """A task as listed: the record's fields with payloads reduced to :class:`Excerpt`.

    ``error.traceback`` is always None; ``result`` is None while no result is stored.
    """

    id: str
    name: str
    queue: str
    state: State
    priority: int
    attempts: int
    max_attempts: int
    run_at: float
    created_at: float
    started_at: float | None
    finished_at: float | None
    progress: Progress
    error: ErrorInfo | None
    idempotency_key: str | None
    version: int
    args: Excerpt
    kwargs: Excerpt
    result: Excerpt | None

    @property
    def done(self) -> bool:
        """True once the task reached a terminal state."""
        return self.state in TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (timestamps as ISO 8601 UTC strings)."""
        return {
            "id": self.id,
            "name": self.name,
            "queue": self.queue,
            "state": self.state.value,
            "priority": self.priority,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "progress": {
                "current": self.progress.current,
                "total": self.progress.total,
                "message": self.progress.message,
            },
            "error": None
            if self.error is None
            else {"type": self.error.type, "message": self.error.message},
            "idempotency_key": self.idempotency_key,
            "run_at": iso(self.run_at),
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "version": self.version,
            "args": self.args.to_dict(),
            "kwargs": self.kwargs.to_dict(),
            "result": None if self.result is None else self.result.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class SummaryPage:
    """One page of a newest-first summary listing; ``next_cursor`` is None on the last page."""

    tasks: list[TaskSummary]
    next_cursor: str | None
