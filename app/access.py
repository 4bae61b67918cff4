"""Who may use the reference app's own routes: the task API's rules, applied to them too.

The scenario routes that show stored data (records, mails, uploads...) need
``TASKS_API_TOKEN`` when it is set, exactly as ``/tasks`` does; and no route
accepts a state-changing request that another site's page made a browser send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from quart import Quart, request

from app.extensions import tasks
from tasks.web import auth

P = ParamSpec("P")
R = TypeVar("R")


def requires_token(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Answer 401 unless the request carries ``TASKS_API_TOKEN`` (when one is set)."""

    @wraps(view)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        token = tasks.config.api_token
        if token:
            auth.check_request(request, token)
        return await view(*args, **kwargs)

    return guarded


def refuse_cross_site_requests(app: Quart) -> None:
    """Refuse (403) state-changing requests from another site's page on every route."""

    @app.before_request
    async def refuse() -> None:
        if request.method not in auth.SAFE_METHODS:
            auth.refuse_cross_site(request, tasks.config.api_token)
