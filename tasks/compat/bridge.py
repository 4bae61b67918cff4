"""Hand-over between plain (thread) callers and the app's event loop.

Quart runs a plain ``def`` view in a worker thread. Such a thread may block,
so the compat layer's blocking calls submit their coroutine to the serving
loop and wait for it there. On the loop thread itself a blocking wait would
stall every request, so those calls refuse with :class:`BlockingCallError`
and name the awaitable variant to use instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from tasks.errors import NotAcceptingError, TasksError

if TYPE_CHECKING:
    from tasks.extension import Tasks

T = TypeVar("T")


class BlockingCallError(TasksError, RuntimeError):
    """A blocking compat call was made on the event loop thread; await its async variant."""


def on_loop_thread() -> bool:
    """True when this thread is running an event loop (blocking here would stall it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def refuse_on_loop(call: str, instead: str) -> None:
    """Raise :class:`BlockingCallError` if ``call`` would block a running loop."""
    if on_loop_thread():
        raise BlockingCallError(
            f"{call} blocks, and was called on the event loop thread, where it would stall"
            f" every request; in async code use `{instead}` instead"
        )


def run_blocking(
    tasks: Tasks,
    make: Callable[[], Coroutine[Any, Any, T]],
    *,
    call: str,
    instead: str,
    timeout: float | None = None,
) -> T:
    """Run the coroutine made by ``make`` on the app's loop and wait for its outcome.

    For threads only (plain views, pool threads, scripts' threads); on the loop
    thread it raises :class:`BlockingCallError`. ``timeout`` bounds the whole
    wait: past it the coroutine is cancelled and ``TimeoutError`` is raised.
    """
    refuse_on_loop(call, instead)
    if tasks.test_mode is not None and not tasks.accepting:  # a plain test, no app serving
        return asyncio.run(make())
    loop = tasks.runtime.loop
    coroutine = make()
    try:
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    except RuntimeError as exc:
        coroutine.close()
        raise NotAcceptingError(f"the app's event loop is not running: {exc}") from None
    try:
        return future.result(timeout)
    except TimeoutError:
        if future.done():
            raise
        future.cancel()
        raise TimeoutError(f"{call} did not finish within {timeout} s") from None
