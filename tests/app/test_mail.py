"""Scenario 5: sign-up answers at once; the welcome mail is rendered into the outbox later."""

from __future__ import annotations

from typing import Any

from quart.typing import TestClientProtocol as QuartClient

from app import create_app
from app.extensions import tasks
from tasks import State


async def test_signup_puts_a_welcome_mail_in_the_outbox(client: QuartClient) -> None:
    response = await client.post("/signup", json={"email": "Ann@Example.org", "name": "Ann"})
    assert response.status_code == 202
    body = await response.get_json()
    assert body["email"] == "ann@example.org"

    record = await tasks.wait(body["id"], 10)
    assert (record.state, record.result) == (State.SUCCEEDED, {"queued_mail": True})
    [message] = (await (await client.get("/outbox")).get_json())["messages"]
    assert message["recipient"] == "ann@example.org"
    assert message["task_id"] == body["id"]
    assert message["subject"] == "Welcome!"
    assert message["sender"] == "Quart Taskqueue <welcome@example.com>"
    assert message["body"].startswith("Hello Ann,")
    assert body["id"] in message["body"]

    again = await client.post("/signup", json={"email": "ann@example.org", "name": "Ann"})
    assert again.status_code == 409
    assert (await again.get_json())["error"]["code"] == "already_signed_up"
    assert len((await (await client.get("/outbox")).get_json())["messages"]) == 1


async def test_signup_does_not_wait_for_the_mail(app_config: dict[str, Any]) -> None:
    # No workers in this process: the answer can only come before any mail exists.
    app = create_app({**app_config, "TASKS_WORKERS": False})
    async with app.test_app():
        client = app.test_client()
        response = await client.post("/signup", json={"email": "bo@example.org", "name": "Bo"})
        assert response.status_code == 202
        record = await tasks.get((await response.get_json())["id"])
        assert (record.name, record.state) == ("mail.send_welcome", State.QUEUED)
        assert (await (await client.get("/outbox")).get_json())["messages"] == []


async def test_signup_refuses_bad_input(client: QuartClient) -> None:
    for body in ({"email": "nope", "name": "X"}, {"email": "a@b.org"}, {"name": "X"}):
        response = await client.post("/signup", json=body)
        assert response.status_code == 400, body
    assert (await tasks.list(name="mail.send_welcome")).tasks == []


async def test_a_burst_of_signups_sends_its_mails_at_the_provider_rate(client: QuartClient) -> None:
    ids = []
    for n in range(25):
        response = await client.post("/signup", json={"email": f"u{n}@example.org", "name": "U"})
        assert response.status_code == 202
        ids.append((await response.get_json())["id"])
    records = [await tasks.wait(task_id, 20) for task_id in ids]
    assert {r.state for r in records} == {State.SUCCEEDED}
    starts = sorted(r.started_at for r in records if r.started_at is not None)
    assert len(starts) == 25
    for i, start in enumerate(starts):  # MAIL_RATE: at most 10 starts in any second
        assert len([s for s in starts[i:] if s < start + 1.0]) <= 10
    assert len((await (await client.get("/outbox")).get_json())["messages"]) == 25
