"""Listings, dashboard and events carry bounded summaries; pages are bounded in bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from tasks.summary import PREVIEW_CHARS
from tests.web.test_api import enqueue, until_state
from tests.web.test_events import parse_events, read_until

BIG = 20
"""Tasks with big arguments in the size test."""
ARG_CHARS = 400_000
"""Characters of each big argument (with 20 tasks, 8 MB of arguments in the store)."""


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False}])
async def test_listing_tasks_with_big_arguments_stays_small(client: Client) -> None:
    letters = "abcdefghijklmnopqrst"[:BIG]
    ids = [(await enqueue(client, "demo.echo", letter * ARG_CHARS))["id"] for letter in letters]
    args_bytes = len(json.dumps(["0" * ARG_CHARS], separators=(",", ":")))

    response = await client.get("/tasks?limit=1000")
    raw = await response.get_data()
    # Whole records would make this answer over 8 MB; summaries are well under a kilobyte each.
    assert len(raw) < BIG * 1024, len(raw)
    page = json.loads(raw)
    assert [t["id"] for t in page["tasks"]] == ids[::-1]
    assert page["next_cursor"] is None
    for letter, summary in zip(letters[::-1], page["tasks"], strict=True):
        expected = json.dumps([letter * ARG_CHARS], separators=(",", ":"))
        assert summary["args"] == {
            "bytes": args_bytes,
            "preview": expected[:PREVIEW_CHARS],
            "truncated": True,
        }
        assert summary["kwargs"] == {"bytes": 2, "preview": "{}", "truncated": False}
        assert summary["result"] is None
        assert summary["url"] == f"/tasks/{summary['id']}"
    # The link gives the full task.
    full = await (await client.get(page["tasks"][0]["url"])).get_json()
    assert full["args"] == [letters[-1] * ARG_CHARS]

    dashboard = await (await client.get("/tasks/dashboard")).get_data()
    assert len(dashboard) < BIG * 2048 + 16384, len(dashboard)  # 8 MB of arguments stored
    assert dashboard.count(b'<tr data-task-id="') == BIG

    connection = client.request(f"/tasks/{ids[0]}/events")
    async with connection:
        head = await read_until(connection, lambda text: "event: task" in text)
        await connection.disconnect()
    assert len(head) < 2048, len(head)
    [event] = parse_events(head)
    assert event["data"]["args"]["bytes"] == args_bytes


@pytest.mark.parametrize("app_config", [{"TASKS_WORKERS": False, "TASKS_MAX_PAGE_BYTES": 4096}])
async def test_pages_stop_at_the_byte_bound_and_paging_goes_on(client: Client) -> None:
    ids = [(await enqueue(client, "demo.echo", f"{i:03}" * 100))["id"] for i in range(30)]
    seen: list[str] = []
    cursor = ""
    for _ in range(30):
        response = await client.get(f"/tasks?limit=1000{cursor}")
        raw = await response.get_data()
        assert len(raw) <= 4096, len(raw)
        page = json.loads(raw)
        assert 1 <= len(page["tasks"]) < 30
        seen += [t["id"] for t in page["tasks"]]
        if page["next_cursor"] is None:
            break
        assert page["next_cursor"] == page["tasks"][-1]["id"]
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == ids[::-1]


async def test_summaries_of_finished_tasks(client: Client) -> None:
    echo = await enqueue(client, "demo.echo", {"k": "v"})
    failed = await enqueue(client, "demo.fail", "m" * 1000)
    await until_state(client, echo["id"], "succeeded")
    await until_state(client, failed["id"], "failed")
    page = await (await client.get("/tasks")).get_json()
    by_id: dict[str, Any] = {t["id"]: t for t in page["tasks"]}
    assert by_id[echo["id"]]["result"] == {"bytes": 9, "preview": '{"k":"v"}', "truncated": False}
    error = by_id[failed["id"]]["error"]
    assert set(error) == {"type", "message"}  # the traceback is in the full task
    assert error["type"] == "RuntimeError"
    assert len(error["message"]) == 200
    assert error["message"].endswith("\N{HORIZONTAL ELLIPSIS}")
