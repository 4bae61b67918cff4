"""Named queues: a worker serves only the queues it is given, on each backend.

Two runtimes share one database, as two worker processes would: one started
with ``TASKS_QUEUES=mail`` (what ``python -m tasks worker --queues mail``
sets), one with the default queue.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, cast

from quart import Quart

from tasks import State, Tasks, current_task

ran_by: dict[str, str] = {}
"""Task id -> the runtime (``mail`` or ``default``) that ran it."""


def make_tasks(label: str) -> Tasks:
    """A ``Tasks`` instance with the same two tasks, recording who ran them."""
    tasks = Tasks()

    @tasks.task(name="send_mail", queue="mail")
    async def send_mail(to: str) -> str:
        ran_by[current_task().id] = label
        return f"sent to {to}"

    @tasks.task(name="report")
    async def report() -> str:
        ran_by[current_task().id] = label
        return "done"

    return tasks


async def serve(stack: AsyncExitStack, tasks: Tasks, url: str, **config: object) -> Quart:
    app = Quart(f"queues-{id(tasks)}")
    app.config.update(TASKS_DATABASE_URL=url, TASKS_POLL_INTERVAL=0.2, **config)
    tasks.init_app(app)
    await stack.enter_async_context(cast(AbstractAsyncContextManager[Any], app.test_app()))
    return app


async def _states(tasks: Tasks, ids: list[str]) -> list[State]:
    return [(await tasks.get(i)).state for i in ids]


async def test_mail_worker_runs_only_mail_and_default_worker_leaves_it(backend_url: str) -> None:
    ran_by.clear()
    default, mail = make_tasks("default"), make_tasks("mail")
    async with AsyncExitStack() as stack:
        await serve(stack, default, backend_url)
        mails = [await default.enqueue("send_mail", f"user{n}@example.com") for n in range(3)]
        assert {(await default.get(h.id)).queue for h in mails} == {"mail"}
        # Enqueued after the mails: once the default worker has run it, it has
        # looked at the queue and passed over the older mail tasks.
        first_report = await default.enqueue("report")
        assert await first_report.result(10) == "done"
        assert await _states(default, [h.id for h in mails]) == [State.QUEUED] * 3

        await serve(stack, mail, backend_url, TASKS_QUEUES="mail")
        mail.runtime.wake()
        results = [await h.result(10) for h in mails]
        assert results == [f"sent to user{n}@example.com" for n in range(3)]
        reports = [await mail.enqueue("report") for _ in range(3)]
        assert [await h.result(10) for h in reports] == ["done"] * 3

    assert {ran_by[h.id] for h in mails} == {"mail"}
    assert {ran_by[h.id] for h in [first_report, *reports]} == {"default"}


async def test_one_enqueue_can_route_a_task_to_another_queue(backend_url: str) -> None:
    ran_by.clear()
    default, mail = make_tasks("default"), make_tasks("mail")
    async with AsyncExitStack() as stack:
        await serve(stack, default, backend_url)
        await serve(stack, mail, backend_url, TASKS_QUEUES="mail")
        report = default.get_task("report")
        rerouted = await report.options(queue="mail").enqueue()
        assert await rerouted.result(10) == "done"
        assert (await default.get(rerouted.id)).queue == "mail"
    assert ran_by[rerouted.id] == "mail"
