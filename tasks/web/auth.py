"""Optional bearer-token protection of the API and dashboard (``TASKS_API_TOKEN``)."""

from __future__ import annotations

import hmac

from quart import Request

from tasks.web.errors import ApiError

COOKIE_NAME = "tasks_token"
"""Cookie the dashboard sets after being opened once with ``?token=``."""
DASHBOARD_HEADER = "X-Tasks-Dashboard"
"""Header the dashboard's scripts send; a cookie alone never authorises a POST."""


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def check_request(request: Request, expected: str) -> None:
    """Raise 401 unless the request carries the token.

    Accepted: the ``Authorization`` header on any request; the dashboard's cookie
    on GET requests, and on other methods only together with
    :data:`DASHBOARD_HEADER` (a cross-site form cannot send that header, and the
    cookie is ``SameSite=Strict`` as well).
    """
    if same_token(bearer_token(request), expected):
        return
    cookie = request.cookies.get(COOKIE_NAME)
    safe = request.method in ("GET", "HEAD") or DASHBOARD_HEADER in request.headers
    if safe and same_token(cookie, expected):
        return
    raise ApiError(
        401,
        "unauthorized",
        "this API needs the header Authorization: Bearer <TASKS_API_TOKEN>",
        {"WWW-Authenticate": 'Bearer realm="tasks"'},
    )
