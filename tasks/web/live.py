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
from typing import Any

from tasks.errors import NotAcceptingError, StoreUnavailableError
from tasks.events import TaskEvent
from tasks.extension import Tasks
from tasks.model import State
from tasks.web.shutdown import Terminated
from tasks.web.sse import RETRY_MS, stopping
from tasks.web.summaries import summary_json

MAX_WATCHED = 200
"""Most tasks one stream follows; the oldest are dropped first."""
NEW_LIMIT = 50
"""Most new tasks one round sends (a burst beyond it: the newest ones)."""
MIN_ROUND = 0.2
"""Least seconds between two rounds, however often local changes wake the stream."""
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


async def dashboard_events(
    tasks: Tasks,
    ids: list[str],
    listing: Listing,
    *,
    location: Callable[[str], str],
    terminated: Terminated | None,
    poll_interval: float,
    keepalive: float,
) -> AsyncIterator[bytes]:
    """Yield ``task``, ``new`` and ``counts`` events until the client leaves or the server stops.

    ``task``: a watched task's summary changed; ``new``: a task newer than
    ``listing.after`` matching its filters; ``counts``: tasks per state. Each
    carries JSON; summaries include ``url``, the full task's location.
    """
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    stop = asyncio.ensure_future(terminated.wait()) if terminated is not None else None

    def wake(event: TaskEvent) -> None:
        woken.set()
        done.discard(event.task_id)  # a finished task that changes here (a retry) is read again

    watched: dict[str, int] = dict.fromkeys(ids[-MAX_WATCHED:], -1)  # id -> version sent
    done: set[str] = set()
    newest = listing.after
    counts: dict[str, int] | None = None
    counts_at = -COUNTS_EVERY
    tasks.add_listener(wake)
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        quiet_until = loop.time() + keepalive
        round_no = 0
        while not stopping(tasks, stop):
            woken.clear()
            started = loop.time()
            out: list[bytes] = []
            try:
                # Finished tasks rarely change (a retry): re-read them every tenth round.
                follow = [i for i in watched if i not in done or round_no % 10 == 0]
                for summary in await tasks.store.get_summaries(follow):
                    if watched.get(summary.id) != summary.version:
                        watched[summary.id] = summary.version
                        out.append(_event("task", summary_json(summary, location(summary.id))))
                    if summary.done:
                        done.add(summary.id)
                    else:
                        done.discard(summary.id)
                if newest is not None:
                    page = await tasks.store.list_summaries(
                        state=listing.state,
                        name=listing.name,
                        queue=listing.queue,
                        limit=NEW_LIMIT,
                    )
                    fresh = [s for s in page.tasks if s.id > newest]
                    for summary in reversed(fresh):  # oldest first: the page prepends each
                        watched[summary.id] = summary.version
                        out.append(_event("new", summary_json(summary, location(summary.id))))
                    if fresh:
                        newest = fresh[0].id
                        for old in sorted(watched)[: max(0, len(watched) - MAX_WATCHED)]:
                            del watched[old]
                            done.discard(old)
                if started - counts_at >= COUNTS_EVERY:
                    counts_at = started
                    now = {s.value: n for s, n in (await tasks.store.count_by_state()).items()}
                    if now != counts:
                        counts = now
                        out.append(_event("counts", _ENCODER.encode(now)))
            except (NotAcceptingError, StoreUnavailableError):
                return  # the client reconnects (and gets a full refresh) once it is back
            round_no += 1
            for chunk in out:
                yield chunk
            if out:
                quiet_until = loop.time() + keepalive
            elif loop.time() >= quiet_until:
                yield b": keep-alive\n\n"
                quiet_until = loop.time() + keepalive
            await wait_round(woken, stop, poll_interval)
            await wait_round(None, stop, started + MIN_ROUND - loop.time())
    finally:
        tasks.remove_listener(wake)
        if stop is not None:
            stop.cancel()


def _event(kind: str, data: str) -> bytes:
    return f"event: {kind}\ndata: {data}\n\n".encode()


async def wait_round(
    woken: asyncio.Event | None, stop: asyncio.Future[Any] | None, timeout: float
) -> None:
    """Until ``woken`` is set, the server stops, or ``timeout`` seconds pass."""
    if timeout <= 0:
        return
    waiting: set[asyncio.Future[Any]] = set()
    waiter = asyncio.ensure_future(woken.wait()) if woken is not None else None
    if waiter is not None:
        waiting.add(waiter)
    if stop is not None:
        waiting.add(stop)
    try:
        if waiting:
            await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        else:
            await asyncio.sleep(timeout)
    finally:
        if waiter is not None:
            waiter.cancel()
