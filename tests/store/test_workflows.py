"""Contract: workflows kept and moved on by the store, on SQLite and PostgreSQL.

Workflows are written by hand here (rows and edges, as :mod:`tasks.workflows`
builds them) and moved on only by the store's own writes: finishes, cancels,
reclaims, retries and purges.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tasks.errors import TaskNotFoundError
from tasks.model import Finish, NewTask, State, new_id
from tasks.store import Store
from tasks.store.graphs import MAX_DEPTH, Edge, NewWorkflow, Receives
from tests.store.conftest import StoreFactory
from tests.store.contract import LEASE, OWNER, add, new_task, wait_for_reclaim


def flow(
    steps: list[NewTask],
    edges: list[tuple[int, int]],
    *,
    receives: dict[int, Receives] | None = None,
    errors: list[tuple[int, int]] = (),  # type: ignore[assignment]
) -> NewWorkflow:
    """A workflow of ``steps`` where ``(parent, child)`` index pairs need each other."""
    ids = [s.id for s in steps]
    links = [Edge(ids[p], ids[c], "needs", n) for n, (p, c) in enumerate(edges)]
    links += [Edge(ids[p], ids[c], "error", n) for n, (p, c) in enumerate(errors)]
    return NewWorkflow(
        new_id(),
        "test",
        time.time(),
        steps,
        links,
        [ids[-1]],
        receives={ids[i]: r for i, r in (receives or {}).items()},
    )


async def run_one(store: Store, result: str = "1", state: State = State.SUCCEEDED) -> str:
    """Claim the next due task, end it in ``state``; its id."""
    [claimed] = await store.claim(OWNER, ["default"], 1, LEASE)
    change = Finish(
        claimed.id, OWNER, state, result_json=result if state is State.SUCCEEDED else None
    )
    assert await store.finish([change]) == [True]
    return claimed.id


async def states(store: Store, workflow: NewWorkflow) -> list[State]:
    found = await store.workflow(workflow.id)
    assert found is not None
    by_id = {s.id: s.state for s in found.steps}
    return [by_id[s.id] for s in workflow.steps]


async def test_a_chain_moves_one_step_at_a_time(store: Store) -> None:
    steps = [new_task() for _ in range(3)]
    chain = flow(steps, [(0, 1), (1, 2)], receives={1: "result", 2: "result"})
    await store.insert_workflow(chain)
    assert await states(store, chain) == [State.QUEUED, State.WAITING, State.WAITING]
    assert await run_one(store, '"a"') == steps[0].id
    assert await states(store, chain) == [State.SUCCEEDED, State.QUEUED, State.WAITING]
    [second] = await store.claim(OWNER, ["default"], 10, LEASE)
    assert second.receives == "result"
    assert second.workflow_id == chain.id
    inputs = await store.step_inputs(second.id)
    assert [(i.parent_id, i.state, i.result) for i in inputs] == [(steps[0].id, "succeeded", "a")]
    assert await store.claim(OWNER, ["default"], 10, LEASE) == []  # the third still waits


async def test_a_chord_callback_waits_for_every_member_and_gets_them_in_order(store: Store) -> None:
    steps = [new_task() for _ in range(4)]
    chord = flow(steps, [(0, 3), (1, 3), (2, 3)], receives={3: "results"})
    await store.insert_workflow(chord)
    claimed = await store.claim(OWNER, ["default"], 10, LEASE)
    assert sorted(r.id for r in claimed) == sorted(s.id for s in steps[:3])
    for n, member in reversed(list(enumerate(steps[:3]))):  # they end in any order
        assert await store.finish([Finish(member.id, OWNER, State.SUCCEEDED, result_json=str(n))])
        expected = State.QUEUED if n == 0 else State.WAITING
        assert (await states(store, chord))[3] == expected
    inputs = await store.step_inputs(steps[3].id)
    assert [i.result for i in inputs] == [0, 1, 2]


async def test_a_failure_cancels_every_step_after_it_naming_it(store: Store) -> None:
    steps = [new_task(name=f"step{n}") for n in range(4)]
    chain = flow(steps, [(0, 1), (1, 2), (2, 3)])
    await store.insert_workflow(chain)
    await run_one(store)
    await run_one(store, state=State.FAILED)
    assert await states(store, chain) == [
        State.SUCCEEDED,
        State.FAILED,
        State.CANCELLED,
        State.CANCELLED,
    ]
    for step in steps[2:]:
        record = await store.get(step.id)
        assert record is not None
        assert record.error is not None
        assert record.error.type == "DependencyError"
        assert record.error.message == f"not run: step step1 ({steps[1].id}) failed"
        assert record.finished_at is not None


async def test_retrying_the_failed_step_resumes_the_workflow(store: Store) -> None:
    steps = [new_task() for _ in range(3)]
    chain = flow(steps, [(0, 1), (1, 2)])
    await store.insert_workflow(chain)
    await run_one(store, state=State.FAILED)
    assert await states(store, chain) == [State.FAILED, State.CANCELLED, State.CANCELLED]
    retried = await store.retry(steps[0].id)
    assert retried is not None
    assert retried.state is State.QUEUED
    assert await states(store, chain) == [State.QUEUED, State.WAITING, State.WAITING]
    cleared = await store.get(steps[2].id)
    assert cleared is not None
    assert cleared.error is None
    for _ in range(3):
        await run_one(store)
    assert await states(store, chain) == [State.SUCCEEDED] * 3


async def test_retrying_a_step_whose_needs_have_not_succeeded_makes_it_wait(store: Store) -> None:
    steps = [new_task() for _ in range(2)]
    chain = flow(steps, [(0, 1)])
    await store.insert_workflow(chain)
    await run_one(store, state=State.FAILED)
    retried = await store.retry(steps[1].id)  # the step after, not the failed one
    assert retried is not None
    assert retried.state is State.WAITING
    assert await store.claim(OWNER, ["default"], 10, LEASE) == []


async def test_cancelling_a_step_or_the_workflow(store: Store) -> None:
    steps = [new_task() for _ in range(3)]
    chain = flow(steps, [(0, 1), (1, 2)])
    await store.insert_workflow(chain)
    waiting = await store.cancel(steps[1].id)  # a waiting step can be cancelled
    assert waiting is not None
    assert waiting.state is State.CANCELLED
    assert await states(store, chain) == [State.QUEUED, State.CANCELLED, State.CANCELLED]

    other = [new_task(queue="other") for _ in range(3)]
    second = flow(other, [(0, 1), (0, 2)])
    await store.insert_workflow(second)
    [running] = await store.claim(OWNER, ["other"], 10, LEASE)
    changed = await store.cancel_workflow(second.id)
    assert sorted(changed) == sorted(s.id for s in other)
    assert await states(store, second) == [State.CANCELLING, State.CANCELLED, State.CANCELLED]
    assert running.id == other[0].id


async def test_error_steps_run_on_a_failure_and_are_dropped_otherwise(store: Store) -> None:
    steps = [new_task(), new_task(), new_task(name="errback")]
    group = flow(steps, [], errors=[(0, 2), (1, 2)], receives={2: "failure"})
    await store.insert_workflow(group)
    assert await states(store, group) == [State.QUEUED, State.QUEUED, State.WAITING]
    first, second = await store.claim(OWNER, ["default"], 2, LEASE)
    both = [
        Finish(first.id, OWNER, State.SUCCEEDED, result_json="1"),
        Finish(second.id, OWNER, State.FAILED),
    ]
    assert await store.finish(both) == [True, True]  # one batch: both ends at once
    [errback] = await store.claim(OWNER, ["default"], 10, LEASE)
    assert errback.id == steps[2].id
    inputs = await store.step_inputs(errback.id)
    assert [(i.parent_id, i.kind, i.state) for i in inputs if i.state == "failed"] == [
        (second.id, "error", "failed")
    ]

    fine = [new_task(), new_task(name="errback")]
    clean = flow(fine, [], errors=[(0, 1)], receives={1: "failure"})
    await store.insert_workflow(clean)
    await run_one(store)
    assert await store.get(fine[1].id) is None  # not needed: gone
    found = await store.workflow(clean.id)
    assert found is not None
    assert [s.id for s in found.steps] == [fine[0].id]


async def test_depends_on_stored_tasks(store: Store) -> None:
    done, failed, pending = await add(store, 3)
    for task_id, state in ((done, State.SUCCEEDED), (failed, State.FAILED)):
        [claimed] = await store.claim(OWNER, ["default"], 1, LEASE)
        assert claimed.id == task_id
        assert await store.finish([Finish(task_id, OWNER, state, result_json="7")]) == [True]
    ready, blocked, doomed = new_task(), new_task(), new_task(name="doomed")
    for child, parents in ((ready, [done]), (blocked, [done, pending]), (doomed, [failed])):
        edges = [Edge(p, child.id, "needs", n) for n, p in enumerate(parents)]
        await store.insert_workflow(
            NewWorkflow(new_id(), "depends", time.time(), [child], edges, [child.id])
        )
    by_id = {r.id: r for r in await store.get_many([ready.id, blocked.id, doomed.id, pending])}
    assert by_id[ready.id].state is State.QUEUED
    assert by_id[blocked.id].state is State.WAITING
    assert by_id[blocked.id].blockers == 1
    assert by_id[doomed.id].state is State.CANCELLED
    error = by_id[doomed.id].error
    assert error is not None
    assert error.message.endswith(f"({failed}) failed")
    assert by_id[pending].workflow_id is not None  # a plain task joins the workflow
    missing = new_task()
    edge = Edge("0" * 32, missing.id, "needs", 0)
    broken = NewWorkflow(new_id(), "depends", time.time(), [missing], [edge], [missing.id])
    with pytest.raises(TaskNotFoundError):
        await store.insert_workflow(broken)
    assert await store.get(missing.id) is None  # nothing half-written


async def test_a_reclaimed_step_that_ran_out_of_attempts_fails_its_workflow(store: Store) -> None:
    steps = [new_task(max_attempts=1), new_task()]
    chain = flow(steps, [(0, 1)])
    await store.insert_workflow(chain)
    await store.claim(OWNER, ["default"], 10, 0.01)
    await wait_for_reclaim(store, "lost")
    assert await states(store, chain) == [State.FAILED, State.CANCELLED]


async def test_purge_keeps_a_result_a_waiting_step_still_needs(store: Store) -> None:
    steps = [new_task() for _ in range(3)]
    chord = flow(steps, [(0, 2), (1, 2)], receives={2: "results"})
    await store.insert_workflow(chord)
    await run_one(store)
    assert await store.purge_finished(time.time() + 1, 100) == 0
    assert await store.get(steps[0].id) is not None


async def test_a_parent_ending_while_its_dependent_is_written(
    store_factory: StoreFactory,
) -> None:
    """Two processes: one ends a task while the other writes a task that depends on it.
    However the two interleave, the dependent ends queued, never waiting forever."""
    one, two = await store_factory(), await store_factory()
    for _ in range(20):
        [parent] = await add(one)
        [claimed] = await one.claim(OWNER, ["default"], 1, LEASE)
        child = new_task()
        workflow = NewWorkflow(
            new_id(), "depends", time.time(), [child], [Edge(parent, child.id)], [child.id]
        )
        finish = Finish(claimed.id, OWNER, State.SUCCEEDED, result_json="1")
        await asyncio.gather(one.finish([finish]), two.insert_workflow(workflow))
        record = await one.get(child.id)
        assert record is not None
        assert record.state is State.QUEUED, f"dependent left {record.state}"
        [ran] = await one.claim(OWNER, ["default"], 1, LEASE)
        assert ran.id == child.id
        assert await one.finish([Finish(ran.id, OWNER, State.SUCCEEDED, result_json="1")])


async def test_the_longest_chain_cascades_and_resumes_to_its_end(store: Store) -> None:
    """A chain of MAX_DEPTH: the cascade after its first step fails, and the resume
    after the retry, reach the last step (nested triggers on SQLite, PostgreSQL's stack)."""
    steps = [new_task() for _ in range(MAX_DEPTH)]
    chain = flow(steps, [(n, n + 1) for n in range(MAX_DEPTH - 1)])
    await store.insert_workflow(chain)
    await run_one(store, state=State.FAILED)
    last = await store.get(steps[-1].id)
    assert last is not None
    assert last.state is State.CANCELLED
    await store.retry(steps[0].id)
    last = await store.get(steps[-1].id)
    assert last is not None
    assert last.state is State.WAITING
