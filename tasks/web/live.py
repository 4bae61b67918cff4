"""The dashboard's one live stream: changes of the tasks a page shows, new tasks, counts.

A page opens one ``EventSource`` on ``GET /tasks/dashboard/events`` naming the
tasks it shows (``ids``) and, on the first page of a listing, the newest id it
shows (``after``) with its filters. The stream does not queue events: on each
round it re-reads the current summaries from the store and sends those whose
``version`` differs from what it sent. So a slow client gets the latest state,
never a growing backlog, and every event is one bounded summary (a few kB).

Rounds run when this process commits a change to any task (the event bus), and
every ``poll_interval`` seconds otherwise: that is how tasks changed or
enqueued by other processes (``hypercorn -w N`` siblings, standalone workers)
show up, with one indexed query of at most :data:`MAX_WATCHED` ids and one of
the newest :data:`NEW_LIMIT` matching tasks per round. A reconnecting client
gets a full refresh (every watched task and the counts), so no event id is kept.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from tasks.events import TaskEvent
from tasks.extension import Tasks
from tasks.model import State
from tasks.web.rounds import paced_rounds
from tasks.web.shutdown import Terminated
from tasks.web.summaries import summary_json

MAX_WATCHED = 200
"""Most tasks one stream follows; the oldest are dropped first."""
NEW_LIMIT = 50
"""Most new tasks one round sends (a burst beyond it: the newest ones)."""
COUNTS_EVERY = 2.0
"""Seconds between two reads of the counts by state."""
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class Listing:
    """The filters of the page's listing; ``after`` is None unless new tasks should appear."""

    after: str | None = None
    state: State | None = None
    name: str | None = None
    queue: str | None = None


def dashboard_events(
    tasks: Tasks,
    ids: list[str],
    listing: Listing,
    *,
    location: Callable[[str], str],
    terminated: Terminated | None,
    poll_interval: float,
    keepalive: float,
) -> AsyncIterator[bytes]:
    """The stream of ``task``, ``new`` and ``counts`` events, until the client leaves or
    the server stops (paced by :func:`~tasks.web.rounds.paced_rounds`).

    ``task``: a watched task's summary changed; ``new``: a task newer than
    ``listing.after`` matching its filters; ``counts``: tasks per state. Each
    carries JSON; summaries include ``url``, the full task's location.
    """
    state = _ListRound(tasks, ids, listing, location)
    return paced_rounds(
        tasks,
        state.round,
        wakes=state.changed,
        terminated=terminated,
        poll_interval=poll_interval,
        keepalive=keepalive,
    )


class _ListRound:
    """What one list stream has sent, and one round of it."""

    def __init__(
        self, tasks: Tasks, ids: list[str], listing: Listing, location: Callable[[str], str]
    ) -> None:
        self.tasks, self.listing, self.location = tasks, listing, location
        self.watched: dict[str, int] = dict.fromkeys(ids[-MAX_WATCHED:], -1)  # id -> version
        self.done: set[str] = set()
        self.newest = listing.after
        self.counts: dict[str, int] | None = None
        self.counts_at = -COUNTS_EVERY
        self.round_no = 0

    def changed(self, event: TaskEvent) -> bool:
        """Every local change wakes the stream; a finished task that changes here (a
        retry) is read again."""
        self.done.discard(event.task_id)
        return True

    async def round(self) -> tuple[list[bytes], bool]:
        out: list[bytes] = []
        started = asyncio.get_running_loop().time()
        store, watched, done = self.tasks.store, self.watched, self.done
        # Finished tasks rarely change (a retry): re-read them every tenth round.
        follow = [i for i in watched if i not in done or self.round_no % 10 == 0]
        for summary in await store.get_summaries(follow):
            if watched.get(summary.id) != summary.version:
                watched[summary.id] = summary.version
                out.append(_event("task", summary_json(summary, self.location(summary.id))))
            if summary.done:
                done.add(summary.id)
            else:
                done.discard(summary.id)
        if self.newest is not None:
            listing = self.listing
            page = await store.list_summaries(
                state=listing.state, name=listing.name, queue=listing.queue, limit=NEW_LIMIT
            )
            fresh = [s for s in page.tasks if s.id > self.newest]
            for summary in reversed(fresh):  # oldest first: the page prepends each
                watched[summary.id] = summary.version
                out.append(_event("new", summary_json(summary, self.location(summary.id))))
            if fresh:
                self.newest = fresh[0].id
                for old in sorted(watched)[: max(0, len(watched) - MAX_WATCHED)]:
                    del watched[old]
                    done.discard(old)
        if started - self.counts_at >= COUNTS_EVERY:
            self.counts_at = started
            now = {s.value: n for s, n in (await store.count_by_state()).items()}
            if now != self.counts:
                self.counts = now
                out.append(_event("counts", _ENCODER.encode(now)))
        self.round_no += 1
        return out, False


def _event(kind: str, data: str) -> bytes:
    return f"event: {kind}\ndata: {data}\n\n".encode()
