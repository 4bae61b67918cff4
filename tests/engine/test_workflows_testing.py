"""Workflows in the test modes: eager runs the steps at once, capture on ``run()``,
with the store's moves (unblock, cancel after a failure, error steps) made in memory."""

from __future__ import annotations

import pytest

from tasks import State, TaskFailedError
from tasks.testing import capture, eager
from tests.engine.test_workflows_engine import calls, fail_once, make_tasks


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    fail_once.clear()


async def test_eager_runs_a_chain_and_a_chord_at_once() -> None:
    tasks = make_tasks()
    fetch, parse = tasks.get_task("fetch"), tasks.get_task("parse")
    size, total = tasks.get_task("size"), tasks.get_task("total")
    with eager(tasks):
        chain = await tasks.chain(fetch.call("a"), parse.then("!")).enqueue()
        assert await chain.result() == "a!"
        chord = await tasks.chord([size.call("ab"), size.call("abc")], total.then()).enqueue()
        assert await chord.result() == 5
        record = await tasks.get_workflow(chord.id)
    assert [s.state for s in record.steps] == [State.SUCCEEDED] * 3
    assert calls[:2] == [("fetch", "a"), ("parse", "<a>")]
    assert calls[-1] == ("total", [2, 3])


async def test_eager_failure_cancels_what_follows_and_runs_the_error_step() -> None:
    tasks = make_tasks()
    flaky, parse, report = (
        tasks.get_task("flaky"),
        tasks.get_task("parse"),
        tasks.get_task("report"),
    )
    fail_once.add("x")
    with eager(tasks):
        flow = tasks.chain(flaky.options(max_attempts=1).call("x"), parse.then())
        handle = await flow.on_error(report.then("noted")).enqueue()
        with pytest.raises(TaskFailedError, match=r"not run: step flaky \(\w+\) failed"):
            await handle.result()
        record = await tasks.get_workflow(handle.id)
    assert [s.state for s in record.steps] == [State.FAILED, State.CANCELLED, State.SUCCEEDED]
    assert calls == [("flaky", "x"), ("report", handle.step_ids[0])]


async def test_capture_runs_a_workflow_step_by_step_on_run() -> None:
    tasks = make_tasks()
    fetch, parse = tasks.get_task("fetch"), tasks.get_task("parse")
    with capture(tasks) as captured:
        first = await fetch.enqueue("a")
        handle = await tasks.chain(fetch.call("b"), parse.then()).enqueue()
        after = await parse.options(depends_on=[first]).enqueue("<plain>")
        assert [c.name for c in captured.pending()] == ["fetch", "fetch"]  # the rest wait
        assert (await tasks.get(after.id)).state == State.WAITING
        ran = await captured.run()
        assert [r.name for r in ran] == ["fetch", "fetch", "parse", "parse"]
        assert await handle.result() == "b"
        assert await after.result() == "plain"
