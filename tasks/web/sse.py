"""Server-sent events for one task: its summary now, then after every change."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from quart import Response

from tasks.errors import NotAcceptingError, TaskNotFoundError
from tasks.extension import Tasks
from tasks.summary import TaskSummary
from tasks.web.shutdown import Terminated
from tasks.web.summaries import summary_json

RETRY_MS = 1000
"""Reconnection delay the stream asks ``EventSource`` clients to use."""
MAX_VERSION = 2**63 - 1
"""Largest version a store keeps (a signed 64-bit integer)."""
_VERSION = re.compile(r"[0-9]{1,19}")  # ASCII digits only, unlike str.isdigit()


def event_stream_response(stream: AsyncIterator[bytes]) -> Response:
    """A ``text/event-stream`` response of ``stream``: not cached, not buffered by proxies,
    and exempt from Quart's response timeout (it lasts as long as the stream)."""
    response = Response(stream, status=200, content_type="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    response.timeout = None
    return response


def format_event(summary: TaskSummary, url: str) -> bytes:
    """One ``task`` event: id is the task's version, data its summary as JSON."""
    return f"id: {summary.version}\nevent: task\ndata: {summary_json(summary, url)}\n\n".encode()


def parse_last_event_id(value: str | None) -> int | None:
    """The version a reconnecting client saw last.

    None (the header is ignored) unless it is a plain ASCII decimal integer
    from 0 to :data:`MAX_VERSION`, optionally surrounded by spaces or tabs.
    """
    if value is None:
        return None
    text = value.strip(" \t")
    if _VERSION.fullmatch(text) is None:
        return None
    version = int(text)
    return version if version <= MAX_VERSION else None


async def task_events(
    tasks: Tasks,
    task_id: str,
    *,
    url: str,
    last_version: int | None,
    terminated: Terminated | None,
    poll_interval: float,
    keepalive: float,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[bytes]:
    """Yield the task's events until it reaches a terminal state or the server stops.

    Events carry the task's summary (``url`` is where the full task is). The
    current summary is sent at once, unless the client already has this
    version (``Last-Event-ID``) and the task is still going; a terminal record is
    always sent, so a reconnecting client never misses the end. Changes made in
    this process wake the stream immediately; those of other processes are found
    by re-reading the record every ``poll_interval`` seconds. A comment line
    goes out after ``keepalive`` seconds of silence. The stream also ends when
    the server starts shutting down (``terminated``) or the task system stops
    accepting work, so that no open stream holds up a drain; clients reconnect
    with ``Last-Event-ID``.
    """
    loop = asyncio.get_running_loop()
    now = clock or loop.time
    stop = asyncio.ensure_future(terminated.wait()) if terminated is not None else None
    sent = last_version
    try:
        with tasks.watch(task_id) as changed:
            yield f"retry: {RETRY_MS}\n\n".encode()
            quiet_until = now() + keepalive
            while True:
                changed.clear()
                try:
                    record = await tasks.get_summary(task_id)
                except (TaskNotFoundError, NotAcceptingError):
                    return
                if record.done or sent is None or record.version > sent:
                    yield format_event(record, url)
                    sent = record.version
                    quiet_until = now() + keepalive
                if record.done or stopping(tasks, stop):
                    return
                await _wait_change(changed, stop, min(poll_interval, quiet_until - now()))
                if stopping(tasks, stop):
                    return
                if now() >= quiet_until:
                    yield b": keep-alive\n\n"
                    quiet_until = now() + keepalive
    finally:
        if stop is not None:
            stop.cancel()


def stopping(tasks: Tasks, stop: asyncio.Future[object] | None) -> bool:
    return not tasks.accepting or (stop is not None and stop.done())


async def _wait_change(
    changed: asyncio.Event, stop: asyncio.Future[object] | None, timeout: float
) -> None:
    waiter = asyncio.ensure_future(changed.wait())
    waiting: set[asyncio.Future[Any]] = {waiter}
    if stop is not None:
        waiting.add(stop)
    try:
        await asyncio.wait(waiting, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
