"""Learning that the server is shutting down, before the ASGI lifespan says so.

Hypercorn, on SIGTERM or Ctrl-C, stops listening, waits up to
``graceful_timeout`` for open connections, and only then runs the lifespan
shutdown. An event stream that waited for the lifespan would hold the whole
drain for ``graceful_timeout`` (and forever on Python 3.12+, where
``Server.wait_closed`` waits for every connection: hypercorn issue 308).

Hypercorn does not tell ASGI apps that it is terminating, but the ``send``
callable it passes to each HTTP request is bound to a stream object whose
worker context carries the ``terminated`` event it sets first thing on
shutdown. :class:`ShutdownBridge` wraps the app's ASGI callable and puts that
event in the request scope; streams end when it is set. Under another server
(or a future Hypercorn without that attribute) the key is absent and streams
fall back to ending when the task system stops accepting work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

SCOPE_KEY = "tasks.server_terminated"

ASGIApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]


class Terminated(Protocol):
    """What we use of Hypercorn's ``WorkerContext.terminated``."""

    def is_set(self) -> bool: ...

    async def wait(self) -> Any: ...


class ShutdownBridge:
    """ASGI middleware: exposes the server's "terminated" event as ``scope[SCOPE_KEY]``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "http":
            terminated = server_terminated_event(send)
            if terminated is not None:
                cast(dict[str, Any], scope)[SCOPE_KEY] = terminated
        await self.app(scope, receive, send)


def server_terminated_event(send: Callable[..., Any]) -> Terminated | None:
    """Hypercorn's worker "terminated" event behind ``send``, if it can be found."""
    stream = getattr(send, "__self__", None)
    context = getattr(stream, "context", None)
    terminated = getattr(context, "terminated", None)
    if callable(getattr(terminated, "is_set", None)) and callable(
        getattr(terminated, "wait", None)
    ):
        return cast(Terminated, terminated)
    return None
