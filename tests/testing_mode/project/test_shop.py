"""A user's own tests of code that enqueues, written with tasks.testing."""

from __future__ import annotations

import pytest
from shop import (
    add,
    celery,
    charge,
    create_app,
    flaky,
    mail_queue,
    send_receipt,
    sent,
    tasks,
    thumbnail,
    wait_for_stock,
)

from tasks import State, TaskFailedError
from tasks.testing import Capture, Eager, engine


@pytest.fixture(autouse=True)
def _clear() -> None:
    sent.clear()


async def test_eager_runs_each_task_at_once(tasks_eager: Eager) -> None:
    handle = await send_receipt.enqueue(7)
    assert await handle.result() == "receipt 7"
    assert sent == ["receipt 7"]
    record = await (await thumbnail.enqueue(64)).wait()
    assert (record.state, record.result["size"], record.progress.message) == (
        State.SUCCEEDED,
        64,
        "done",
    )


async def test_eager_keeps_errors_in_the_handle(tasks_eager: Eager) -> None:
    handle = await charge.enqueue(-5)
    with pytest.raises(TaskFailedError, match="cannot charge -5"):
        await handle.result()
    record = await handle.status()
    assert (record.state, record.attempts) == (State.FAILED, 1)  # dont_retry_on


async def test_capture_records_and_runs_on_demand(tasks_capture: Capture) -> None:
    app = create_app()
    response = await app.test_client().post("/orders/12")
    assert response.status_code == 202
    tasks_capture.assert_enqueued("shop.charge", 12)
    assert sent == []  # nothing ran
    records = await tasks_capture.run()
    assert [r.name for r in records] == ["shop.charge", "shop.send_receipt"]
    assert sent == ["receipt 12"]
    with pytest.raises(AssertionError, match="was not enqueued"):
        tasks_capture.assert_enqueued("shop.charge", 13)


def test_capture_from_plain_code(tasks_capture: Capture) -> None:
    mail_queue.put("ann@example.org")
    assert [c.args for c in tasks_capture.named("shop.mail")] == [["ann@example.org"]]
    tasks_capture.run_sync()
    assert sent == ["ann@example.org"]


def test_celery_task_always_eager() -> None:
    celery.conf.task_always_eager = True
    try:
        result = add.delay(2, 3)
        assert (result.state, result.get()) == ("SUCCESS", 5)
    finally:
        celery.conf.task_always_eager = False


async def test_the_real_engine_drains_until_idle() -> None:
    app = create_app()
    async with engine(app) as running:
        handle = await charge.enqueue(30)
        await running.drain(timeout=20)
        assert (await handle.status()).state == State.SUCCEEDED
        assert sent == ["receipt 30"]
        assert tasks.test_mode is None


async def test_eager_retries_and_snoozes_as_the_engine_would(tasks_eager: Eager) -> None:
    record = await (await flaky.enqueue(3)).wait()
    assert (record.state, record.result, record.attempts) == (State.SUCCEEDED, 3, 3)
    assert [e.message for e in record.errors] == ["attempt 1 failed", "attempt 2 failed"]
    snoozed = await (await wait_for_stock.enqueue()).wait()
    assert (snoozed.state, snoozed.result, snoozed.snoozes, snoozed.attempts) == (
        State.SUCCEEDED,
        "shipped",
        2,
        1,
    )
