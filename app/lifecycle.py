"""Closing the app's own resources however serving ends.

Quart runs ``after_serving`` hooks only after a successful start: when a
startup hook fails, it runs none of them, and a resource opened by an earlier
hook (an aiosqlite connection's thread, a pool) would keep the process alive
after Hypercorn gave up on it. :func:`close_when_serving_ends` closes on
both paths.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from quart import Quart
from quart.signals import got_serving_exception


def close_when_serving_ends(app: Quart, close: Callable[[], Awaitable[None]]) -> None:
    """Call ``close`` after serving, and also when ``app`` fails to start (or stop)."""

    async def close_after_failure(sender: Quart, exception: BaseException) -> None:
        await close()

    app.after_serving(close)
    got_serving_exception.connect(close_after_failure, app, weak=False)
