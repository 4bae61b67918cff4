"""Workflows through the engine, on both backends: chains, groups, chords, depends_on,
failure in the middle, cancel, retry that resumes, error steps.

Two runtimes share the store where it matters (as two processes would); the
poll interval is far beyond every bound, so a step that becomes due must be
found by a wake-up.
"""

from __future__ import annotations

import asyncio
import functools
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, cast

import pytest
from quart import Quart

from tasks import InvalidArgumentsError, State, Tasks
from tasks.enqueueing import new_task
from tasks.errors import TaskFailedError, TaskNotFoundError, WorkflowNotFoundError
from tasks.workflows import RowMaker
from tests.conftest import eventually

SLOW_POLL = 60.0
calls: list[tuple[str, Any]] = []
gate: dict[str, asyncio.Event] = {}
fail_once: set[str] = set()


def make_tasks() -> Tasks:
    tasks = Tasks()

    @tasks.task(name="fetch")
    async def fetch(url: str) -> str:
        calls.append(("fetch", url))
        return f"<{url}>"

    @tasks.task(name="parse")
    async def parse(page: str, suffix: str = "") -> str:
        calls.append(("parse", page))
        return page.strip("<>") + suffix

    @tasks.task(name="size")
    async def size(path: str) -> int:
        calls.append(("size", path))
        return len(path)

    @tasks.task(name="total")
    async def total(sizes: list[int], base: int = 0) -> int:
        calls.append(("total", sizes))
        return base + sum(sizes)

    @tasks.task(name="flaky")
    async def flaky(key: str) -> str:
        calls.append(("flaky", key))
        if key in fail_once:
            fail_once.discard(key)
            raise RuntimeError(f"{key} broke")
        return key

    @tasks.task(name="hold")
    async def hold(key: str) -> str:
        await gate[key].wait()
        return key

    @tasks.task(name="report")
    async def report(failed_id: str, note: str) -> str:
        calls.append(("report", failed_id))
        return note

    return tasks


async def serve(stack: AsyncExitStack, tasks: Tasks, url: str) -> Quart:
    app = Quart(f"workflows-{id(tasks)}")
    app.config.update(TASKS_DATABASE_URL=url, TASKS_POLL_INTERVAL=SLOW_POLL)
    tasks.init_app(app)
    await stack.enter_async_context(cast(AbstractAsyncContextManager[Any], app.test_app()))
    return app


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    gate.clear()
    fail_once.clear()


async def test_chain_passes_each_result_on(backend_url: str) -> None:
    tasks = make_tasks()
    fetch, parse = tasks.get_task("fetch"), tasks.get_task("parse")
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        flow = tasks.chain(fetch.call("a"), parse.then("!"), parse.then(suffix="?"))
        handle = await flow.enqueue()
        assert await handle.result(10) == "a!?"
        record = await handle.status()
    assert record.kind == "chain"
    assert [s.state for s in record.steps] == [State.SUCCEEDED] * 3
    assert [(e.parent_id, e.child_id) for e in record.edges] == [
        (handle.step_ids[0], handle.step_ids[1]),
        (handle.step_ids[1], handle.step_ids[2]),
    ]
    assert calls == [("fetch", "a"), ("parse", "<a>"), ("parse", "a!")]


async def test_immutable_step_waits_but_receives_nothing(backend_url: str) -> None:
    tasks = make_tasks()
    fetch = tasks.get_task("fetch")
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        handle = await tasks.chain(fetch.call("a"), fetch.call("b")).enqueue()
        assert await handle.result(10) == "<b>"
    assert calls == [("fetch", "a"), ("fetch", "b")]


async def test_group_and_chord_over_two_runtimes(backend_url: str) -> None:
    one, two = make_tasks(), make_tasks()
    size, total = one.get_task("size"), one.get_task("total")
    paths = [f"{'x' * n}" for n in range(1, 21)]
    async with AsyncExitStack() as stack:
        await serve(stack, one, backend_url)
        await serve(stack, two, backend_url)
        group = await one.group(size.call(p) for p in paths).enqueue()
        assert await group.result(20) == list(range(1, 21))
        chord = await one.chord([size.call(p) for p in paths], total.then(base=1000)).enqueue()
        assert await chord.result(20) == 1000 + sum(range(1, 21))
    assert [c for c in calls if c[0] == "total"] == [("total", list(range(1, 21)))]


async def test_a_chain_after_a_group_receives_the_list(backend_url: str) -> None:
    tasks = make_tasks()
    size, total = tasks.get_task("size"), tasks.get_task("total")
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        flow = tasks.chain(tasks.group([size.call("ab"), size.call("abc")]), total.then())
        assert await (await flow.enqueue()).result(10) == 5


async def test_depends_on_waits_for_every_task(backend_url: str) -> None:
    tasks = make_tasks()
    hold, fetch = tasks.get_task("hold"), tasks.get_task("fetch")
    gate["a"], gate["b"] = asyncio.Event(), asyncio.Event()
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        a, b = await hold.enqueue("a"), await hold.enqueue("b")
        after = await fetch.options(depends_on=[a, b.id]).enqueue("after")
        assert await after.state() == State.WAITING
        waiting = await tasks.why_waiting(await after.status())
        assert waiting is not None
        assert waiting.reason == "dependencies"
        assert waiting.detail == f"waits for 2 step(s) to succeed: {a.id}, {b.id}"
        gate["a"].set()
        await a.wait(10)
        assert await after.state() == State.WAITING
        gate["b"].set()
        assert await after.result(10) == "<after>"
        done = await tasks.get(a.id)
        assert done.workflow_id is not None  # the plain task joined the dependent's workflow
        with pytest.raises(TaskNotFoundError, match="to depend on"):
            await fetch.options(depends_on=["0" * 32]).enqueue("never")


async def test_depends_on_a_failed_task_is_cancelled_at_once(backend_url: str) -> None:
    tasks = make_tasks()
    flaky, fetch = tasks.get_task("flaky"), tasks.get_task("fetch")
    fail_once.add("x")
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        broken = await flaky.options(max_attempts=1).enqueue("x")
        assert (await broken.wait(10)).state == State.FAILED
        after = await fetch.options(depends_on=[broken]).enqueue("after")
        record = await tasks.get(after.id)
    assert record.state == State.CANCELLED
    assert record.error is not None
    assert record.error.type == "DependencyError"
    assert f"step flaky ({broken.id}) failed" in record.error.message


async def test_failure_cancels_what_follows_and_retry_resumes(backend_url: str) -> None:
    tasks = make_tasks()
    fetch, flaky, parse = tasks.get_task("fetch"), tasks.get_task("flaky"), tasks.get_task("parse")
    fail_once.add("mid")
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        flow = tasks.chain(
            fetch.call("a"), flaky.options(max_attempts=1).call("mid"), parse.then(), parse.then()
        )
        handle = await flow.enqueue()
        with pytest.raises(TaskFailedError, match=r"not run: step flaky \(\w+\) failed"):
            await handle.result(10)
        record = await handle.status()
        assert [s.state for s in record.steps] == [
            State.SUCCEEDED,
            State.FAILED,
            State.CANCELLED,
            State.CANCELLED,
        ]
        assert calls == [("fetch", "a"), ("flaky", "mid")]
        await tasks.retry(handle.step_ids[1])  # fixed: the workflow goes on from there
        assert await handle.result(10) == "mid"
        record = await handle.status()
    assert [s.state for s in record.steps] == [State.SUCCEEDED] * 4
    assert calls[-3:] == [("flaky", "mid"), ("parse", "mid"), ("parse", "mid")]
    assert [s.error for s in record.steps[2:]] == [None, None]


async def test_error_step_runs_once_with_the_failed_step(backend_url: str) -> None:
    tasks = make_tasks()
    flaky, report = tasks.get_task("flaky"), tasks.get_task("report")
    fail_once.update({"b", "c"})
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        one_time = flaky.options(max_attempts=1)
        flow = tasks.group([one_time.call("a"), one_time.call("b"), one_time.call("c")])
        handle = await flow.on_error(report.then("noted")).enqueue()
        await handle.wait(10)
        record = await handle.status()
        error_steps = [s for s in record.steps if s.name == "report"]
        assert len(error_steps) == 1
        done = await tasks.wait(error_steps[0].id, 10)
        assert done.result == "noted"
        failed = {s.id for s in record.steps if s.state == State.FAILED}
        assert [c for c in calls if c[0] == "report"] == [("report", calls[-1][1])]
        assert calls[-1][1] in failed

        clean = await tasks.chain(one_time.call("a")).on_error(report.then("x")).enqueue()
        assert await clean.result(10) == "a"
        steps = (await clean.status()).steps
    assert [s.name for s in steps] == ["flaky"]  # the unneeded error step is gone


async def test_cancel_a_workflow(backend_url: str) -> None:
    tasks = make_tasks()
    hold, fetch = tasks.get_task("hold"), tasks.get_task("fetch")
    gate["w"] = asyncio.Event()
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        handle = await tasks.chain(hold.call("w"), fetch.call("next"), fetch.then()).enqueue()
        await eventually(lambda: _state_is(tasks, handle.step_ids[0], State.RUNNING))
        assert await handle.cancel() == 3
        record = await handle.wait(10)
        with pytest.raises(WorkflowNotFoundError):
            await tasks.get_workflow("0" * 32)
    assert [s.state for s in record.steps] == [State.CANCELLED] * 3
    assert calls == []


async def test_bad_workflows_are_refused_before_anything_is_written(backend_url: str) -> None:
    tasks = make_tasks()
    fetch, parse = tasks.get_task("fetch"), tasks.get_task("parse")
    async with AsyncExitStack() as stack:
        await serve(stack, tasks, backend_url)
        with pytest.raises(InvalidArgumentsError, match="comes first"):
            tasks.chain(parse.then()).build(rows(tasks))
        with pytest.raises(InvalidArgumentsError, match="after the result it receives"):
            parse.then("one", "two", "three")  # type: ignore[call-arg]
        with pytest.raises(InvalidArgumentsError, match="keys do not apply"):
            tasks.chain(fetch.options(idempotency_key="k").call("a")).build(rows(tasks))
        with pytest.raises(InvalidArgumentsError, match="at most 1000 steps"):
            tasks.group(fetch.call(str(n)) for n in range(1001)).build(rows(tasks))
        with pytest.raises(InvalidArgumentsError, match="at most 100 steps deep"):
            tasks.chain(fetch.call("a"), *[parse.then() for _ in range(100)]).build(rows(tasks))
        wide_and_deep = [tasks.chain(*[fetch.call(str(n)) for n in range(100)]) for _ in range(10)]
        assert len(tasks.group(wide_and_deep).build(rows(tasks)).steps) == 1000
        assert (await tasks.list(limit=10)).tasks == []


def rows(tasks: Tasks) -> RowMaker:
    return functools.partial(new_task, tasks.runtime)


async def _state_is(tasks: Tasks, task_id: str, state: State) -> bool:
    return (await tasks.get(task_id)).state == state
