"""A user's small Quart app with tasks: what the testing-mode tests exercise."""

from __future__ import annotations

import os

from quart import Quart

from tasks import Retry, Tasks, current_task
from tasks.compat import CeleryTasks, TaskQueue

tasks = Tasks()
celery = CeleryTasks(tasks)
sent: list[str] = []
"""Receipts 'sent' in this process (stands in for an outbox)."""
mail_queue = TaskQueue(tasks, name="shop.mail", handler=sent.append)


@tasks.task(name="shop.send_receipt")
async def send_receipt(order_id: int) -> str:
    sent.append(f"receipt {order_id}")
    return f"receipt {order_id}"


@tasks.task(name="shop.thumbnail")
def thumbnail(size: int) -> dict[str, object]:
    current_task().progress(1, 1, "done")
    return {"size": size, "pid": os.getpid()}


@tasks.task(name="shop.charge", max_attempts=3, dont_retry_on=(ValueError,))
async def charge(amount: int) -> int:
    if amount < 0:
        raise ValueError(f"cannot charge {amount}")
    await send_receipt.enqueue(amount)
    return amount


@celery.task(name="shop.add")
def add(a: int, b: int) -> int:
    return a + b


def create_app() -> Quart:
    app = Quart("shop")
    tasks.init_app(app)

    @app.post("/orders/<int:order_id>")
    async def order(order_id: int) -> tuple[dict[str, str], int]:
        handle = await charge.enqueue(order_id)
        return {"id": handle.id}, 202

    return app


@tasks.task(name="shop.flaky", max_attempts=3)
async def flaky(succeed_on: int) -> int:
    attempt = current_task().attempt
    if attempt < succeed_on:
        raise RuntimeError(f"attempt {attempt} failed")
    return attempt


snoozes_seen: list[int] = []


@tasks.task(name="shop.wait_for_stock", max_snoozes=2)
async def wait_for_stock() -> str:
    snoozes_seen.append(len(snoozes_seen))
    if len(snoozes_seen) < 3:
        raise Retry(delay=60, reason="no stock yet")
    return "shipped"
