"""The admin commands against a real SQLite file and a real PostgreSQL schema.

``python -m tasks`` runs as a subprocess; the store API seeds the data and
checks what the commands changed.
"""

from __future__ import annotations

import time

import pytest

from tasks.model import ErrorInfo, Finish, RowLimits, State
from tasks.store import Store
from tests.cli.conftest import run_cli
from tests.store.contract import OWNER, add, claim_one, must_get

pytestmark = pytest.mark.slow  # each test runs `python -m tasks` subprocesses

TRACEBACK = 'Traceback (most recent call last):\n  File "jobs.py", line 3\nValueError: bad\n'


async def _fail(store: Store, task_id: str, queue: str = "default") -> None:
    claimed = await claim_one(store, queue=queue)
    assert claimed.id == task_id
    error = ErrorInfo("ValueError", "bad input", TRACEBACK)
    await store.finish([Finish(task_id, OWNER, State.FAILED, error=error)])


async def test_reading_commands(seeded: Store) -> None:
    url = seeded.url
    now = time.time()
    [failed] = await add(seeded, name="jobs.add", run_at=now - 60)
    await _fail(seeded, failed)
    waiting = await add(seeded, 2, name="jobs.add", run_at=now - 30)
    mail = await add(seeded, 2, name="mail.send", queue="mail", run_at=now - 10)
    await claim_one(seeded, queue="mail")
    await seeded.register_schedules({"nightly": now - 3600})

    table = run_cli("list", url=url)
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split()[:4] == ["ID", "NAME", "QUEUE", "STATE"]
    newest_first = sorted([failed, *waiting, *mail], reverse=True)
    assert [line.split()[0] for line in lines[1:]] == newest_first

    assert [t["id"] for t in run_cli("list", "--state", "failed", "--json", url=url).json()] == [
        failed
    ]
    mail_queued = run_cli(
        "list", "--queue", "mail", "--name", "mail.send", "--state", "queued", "--json", url=url
    ).json()
    assert [t["id"] for t in mail_queued] == [mail[1]]
    limited = run_cli("list", "--limit", "2", url=url)
    assert len(limited.out.splitlines()) == 4  # header, 2 rows, "more than 2" note
    assert "more than 2" in limited.out

    shown = run_cli("show", failed, url=url)
    assert shown.code == 0, shown.err
    assert "state            failed" in shown.out
    assert "attempt 1 failed" in shown.out
    assert "ValueError: bad input" in shown.out
    assert 'File "jobs.py", line 3' in shown.out
    record = run_cli("show", failed, "--json", url=url).json()
    assert record["error"]["traceback"] == TRACEBACK
    assert [(e["attempt"], e["type"]) for e in record["errors"]] == [(1, "ValueError")]

    stats = run_cli("stats", "--json", url=url).json()
    assert stats["states"] == {
        "queued": 3, "waiting": 0, "running": 1, "cancelling": 0, "succeeded": 0, "failed": 1,
        "cancelled": 0,
    }  # fmt: skip
    assert stats["names"]["mail.send"]["running"] == 1
    assert "(all)" in run_cli("stats", url=url).out

    queues = {q["queue"]: q for q in run_cli("queues", "--json", url=url).json()}
    assert (queues["default"]["queued"], queues["default"]["running"]) == (2, 0)
    assert (queues["mail"]["queued"], queues["mail"]["running"]) == (1, 1)
    assert 29 <= queues["default"]["oldest_queued_age"] < 3600
    queue_table = run_cli("queues", url=url).out.splitlines()
    assert queue_table[0].split() == ["QUEUE", "QUEUED", "RUNNING", "OLDEST", "QUEUED"]

    [nightly] = run_cli("schedules", "--json", url=url).json()
    assert (nightly["name"], nightly["paused"]) == ("nightly", False)

    missing = run_cli("show", "0" * 32, url=url)
    assert missing.code == 1
    assert "no task with id" in missing.err


async def test_changing_commands(seeded: Store) -> None:
    url = seeded.url
    failed = await add(seeded, 3, name="jobs.add")
    for task_id in failed:
        await _fail(seeded, task_id)
    [other] = await add(seeded, name="jobs.other")
    await _fail(seeded, other)
    [stopping, waiting] = await add(seeded, 2, queue="q2")
    await claim_one(seeded, queue="q2")  # `stopping` (the older)
    await seeded.cancel(stopping)  # running -> cancelling

    one = run_cli("retry", failed[0], url=url)
    assert (one.code, one.out.strip()) == (0, f"queued {failed[0]} again")
    assert (await must_get(seeded, failed[0])).state is State.QUEUED
    again = run_cli("retry", failed[0], url=url)
    assert again.code == 1
    assert "only failed or cancelled tasks can be retried" in again.err
    not_yet = run_cli("retry", stopping, url=url)
    assert (not_yet.code, "still stopping" in not_yet.err) == (1, True)
    assert run_cli("retry", "0" * 32, url=url).code == 1
    assert run_cli("retry", url=url).code == 2  # neither an id nor --failed
    by_name = run_cli("retry", "--failed", "--name", "jobs.add", url=url)
    assert by_name.out.strip() == "queued 2 failed task(s) again"
    assert (await must_get(seeded, other)).state is State.FAILED

    assert run_cli("cancel", waiting, url=url).out.strip() == f"cancelled {waiting}"
    done = run_cli("cancel", waiting, url=url)
    assert (done.code, "already cancelled" in done.err) == (1, True)
    [held] = await add(seeded, queue="q3")
    await claim_one(seeded, queue="q3")
    asked = run_cli("cancel", held, url=url)
    assert "cancelling until its worker confirms" in asked.out
    assert (await must_get(seeded, held)).state is State.CANCELLING
    assert run_cli("cancel", "0" * 32, url=url).code == 1

    purge = ("purge", "--state", "failed", "--older-than")
    refused = run_cli(*purge, "0s", url=url, stdin="n\n")
    assert refused.code == 1
    assert "Delete failed tasks finished more than 0s ago?" in refused.out
    assert (await must_get(seeded, other)).state is State.FAILED
    young = run_cli(*purge, "1h", "--yes", url=url)
    assert young.out.strip() == "deleted 0 task(s)"
    confirmed = run_cli(*purge, "0s", url=url, stdin="y\n")
    assert confirmed.out.endswith("? [y/N]: deleted 1 task(s)\n")
    assert await seeded.get(other) is None
    assert (await must_get(seeded, waiting)).state is State.CANCELLED  # another state: kept
    bad = run_cli("purge", "--state", "running", "--older-than", "2w", "--yes", url=url)
    assert bad.code == 2


async def test_show_says_why_a_queued_task_waits(seeded: Store, backend_url: str) -> None:
    limits = RowLimits(concurrency_key="sync:7", concurrency_limit=1)
    running, waiting = await add(seeded, 2, limits=limits)
    assert (await claim_one(seeded)).id == running
    shown = run_cli("show", waiting, "--json", url=backend_url).json()
    assert shown["waiting"]["reason"] == "concurrency_limit"
    assert shown["limits"]["concurrency_key"] == "sync:7"
    text = run_cli("show", waiting, url=backend_url)
    assert "1 of 1 allowed tasks of 'sync:7' are running" in text.out
    assert "waiting" not in run_cli("show", running, "--json", url=backend_url).json()
