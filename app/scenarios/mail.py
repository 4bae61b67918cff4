"""Scenario 5 (seed 001): sign up, and the welcome mail goes out in the background.

The Flask version sent the mail from a thread started in the view (or a
Celery task): a crash lost it, and nothing showed whether it went. Here the
sign-up stores the user and enqueues ``mail.send_welcome``, which renders a
template into the ``outbox`` table (a relay would hand the outbox to SMTP).
The answer never waits for the mail; a repeated sign-up sends nothing twice.
The mail provider takes at most ``MAIL_RATE`` messages: the task's rate limit
holds that across every process, so a burst of sign-ups queues its mails and
sends them at that pace instead of failing at the provider.
"""

from __future__ import annotations

import re
import time

from quart import Blueprint, Response, current_app, jsonify, render_template

from app.access import requires_token
from app.db import AppDatabase, app_db
from app.extensions import tasks
from app.scenarios.responses import (
    ApiError,
    accepted,
    install_error_handlers,
    json_object,
    text_field,
)
from tasks import current_task

blueprint = Blueprint("mail", __name__)
install_error_handlers(blueprint)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
SUBJECT = "Welcome!"
MAIL_RATE = "10/s"
"""The provider's limit (starts of ``mail.send_welcome`` per window, fleet-wide)."""


@tasks.task(name="mail.send_welcome", rate_limit=MAIL_RATE)
async def send_welcome(email: str, name: str) -> dict[str, int | bool]:
    """Render the welcome mail and put it in the outbox (once per task, however often run)."""
    task_id = current_task().id
    sender = current_app.config["APP_MAIL_SENDER"]
    body = await render_template(
        "mail/welcome.txt", name=name, email=email, sender=sender, task_id=task_id
    )
    written = await put_in_outbox(app_db(), task_id, sender, email, SUBJECT, body)
    return {"queued_mail": written}


async def put_in_outbox(
    database: AppDatabase, task_id: str, sender: str, recipient: str, subject: str, body: str
) -> bool:
    """Store one outgoing message keyed by ``task_id``; True if this call stored it."""
    changed = await database.execute(
        "INSERT INTO outbox (task_id, sender, recipient, subject, body, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (task_id) DO NOTHING",
        (task_id, sender, recipient, subject, body, time.time()),
    )
    return changed == 1


@blueprint.post("/signup")
async def signup() -> tuple[Response, int, dict[str, str]]:
    """Create a user from ``email`` and ``name``; 202 with the mail task's id, 409 if known."""
    body = await json_object()
    email = text_field(body, "email", 254).lower()
    name = text_field(body, "name", 100)
    if not _EMAIL.fullmatch(email):
        raise ApiError(400, "invalid_field", "email must look like name@example.org")
    database = app_db()
    if await database.fetch_one("SELECT 1 FROM users WHERE email = ?", (email,)):
        raise ApiError(409, "already_signed_up", f"{email} has already signed up")
    # The key makes two racing sign-ups for one address share one mail task.
    handle = await send_welcome.options(idempotency_key=f"welcome:{email}").enqueue(email, name)
    await database.execute(
        "INSERT INTO users (email, name, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (email) DO NOTHING",
        (email, name, time.time()),
    )
    return accepted(handle, email=email)


@blueprint.get("/outbox")
@requires_token
async def outbox() -> Response:
    """The newest 50 messages in the outbox."""
    rows = await app_db().fetch_all(
        "SELECT id, task_id, sender, recipient, subject, body, created_at FROM outbox"
        " ORDER BY id DESC LIMIT 50"
    )
    return jsonify({"messages": rows})
