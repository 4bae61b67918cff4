"""Who may use the API: the optional bearer token (``TASKS_API_TOKEN``) and the
refusal of state-changing requests that a page of another site makes a browser send."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from quart import Request

from tasks.web.errors import ApiError

COOKIE_NAME = "tasks_token"
"""Cookie the dashboard sets after being opened once with ``?token=``."""
DASHBOARD_HEADER = "X-Tasks-Dashboard"
"""Header the dashboard's scripts send; a cookie alone never authorises a POST."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing, so that a forged one does no harm."""


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


def is_cross_site(request: Request) -> bool:
    """True when a browser says another origin's page made this request.

    ``Sec-Fetch-Site`` (sent by current browsers, not settable by a page) decides
    when present: only ``same-origin`` and ``none`` (typed by the user) pass.
    Otherwise an ``Origin`` header must name this host. A request with neither
    comes from a program (curl, a script), not from a page.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site.lower() not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return urlsplit(origin).netloc.lower() != request.host.lower()  # "null" never matches


def refuse_cross_site(request: Request, token: str | None) -> None:
    """Raise 403 for a state-changing request a browser sent for another site's page.

    Without this, any page could make a visitor's browser cancel tasks with a
    plain HTML form when no token is set. A request carrying the right bearer
    token is never a forgery (a page cannot add that header cross-site without
    the server's CORS consent), so it passes whatever its origin.
    """
    if request.method in SAFE_METHODS:
        return
    if token and same_token(bearer_token(request), token):
        return
    if is_cross_site(request):
        raise ApiError(
            403,
            "cross_site_request",
            f"{request.method} requests from another site's page are refused"
            " (send them from the same origin, or from a program with no Origin header)",
        )
