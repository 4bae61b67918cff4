"""The pacing both dashboard streams share: rounds, wake-ups, keep-alives, the end.

A stream built on :func:`paced_rounds` sends the SSE ``retry`` line, then runs
rounds: its own ``one_round`` reads the store and answers the events to send
(and whether the stream ends after them). A round runs when this process
commits a change the stream cares about (``wakes``), and every
``poll_interval`` seconds otherwise, never less than :data:`MIN_ROUND` after
the one before; after ``keepalive`` seconds without an event a comment line
keeps proxies from closing the connection. The stream ends when the server
stops, when the store cannot be read (the client reconnects and gets a full
refresh), or when a round says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from tasks.errors import NotAcceptingError, StoreUnavailableError
from tasks.events import TaskEvent
from tasks.extension import Tasks
from tasks.web.shutdown import Terminated
from tasks.web.sse import RETRY_MS, stopping

MIN_ROUND = 0.2
"""Least seconds between two rounds, however often local changes wake the stream."""

Round = Callable[[], Awaitable[tuple[list[bytes], bool]]]
"""One round: the events to send, and whether the stream ends after them."""


async def paced_rounds(
    tasks: Tasks,
    one_round: Round,
    *,
    wakes: Callable[[TaskEvent], bool],
    terminated: Terminated | None,
    poll_interval: float,
    keepalive: float,
) -> AsyncIterator[bytes]:
    """Yield the events of ``one_round``'s rounds, paced as the module says."""
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    stop = asyncio.ensure_future(terminated.wait()) if terminated is not None else None

    def wake(event: TaskEvent) -> None:
        if wakes(event):
            woken.set()

    tasks.add_listener(wake)
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        quiet_until = loop.time() + keepalive
        while not stopping(tasks, stop):
            woken.clear()
            started = loop.time()
            try:
                out, last = await one_round()
            except (NotAcceptingError, StoreUnavailableError):
                return  # the client reconnects (and gets a full refresh) once it is back
            for chunk in out:
                yield chunk
            if last:
                return
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
