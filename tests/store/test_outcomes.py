"""Store contract: end-of-run outcomes (finish) and progress reports.

Every test runs against each backend (the ``store`` fixture, tests/store/conftest.py).
"""

from __future__ import annotations

import asyncio
import time

from tasks.model import ErrorInfo, Finish, Progress, State, new_id
from tasks.store import Store
from tests.store.contract import (
    LEASE,
    OWNER,
    add,
    claim_one,
    must_get,
)


async def test_finish_success(store: Store) -> None:
    task_id = (await add(store))[0]
    running = await claim_one(store)
    before = time.time()
    applied = await store.finish(
        [Finish(task_id, OWNER, State.SUCCEEDED, result_json='{"ok": 1}', progress=Progress(3, 3))]
    )
    assert applied == [True]
    record = await must_get(store, task_id)
    assert record.state is State.SUCCEEDED
    assert record.result == {"ok": 1}
    assert record.error is None
    assert record.progress == Progress(3, 3, None)
    assert record.finished_at is not None
    assert record.finished_at >= before
    assert record.started_at == running.started_at
    assert record.attempts == 1
    assert (record.lease_owner, record.lease_expires_at) == (None, None)
    assert record.version == running.version + 1


async def test_finish_failure(store: Store) -> None:
    task_id = (await add(store))[0]
    running = await claim_one(store)
    error = ErrorInfo("ValueError", "bad input", "Traceback ...")
    assert await store.finish([Finish(task_id, OWNER, State.FAILED, error=error)]) == [True]
    record = await must_get(store, task_id)
    assert record.state is State.FAILED
    assert record.error == error
    assert record.result is None
    assert record.finished_at is not None
    assert record.started_at == running.started_at
    assert record.attempts == 1
    assert record.lease_owner is None
    assert record.version == running.version + 1


async def test_finish_retry_later(store: Store) -> None:
    task_id = (await add(store, max_attempts=3))[0]
    running = await claim_one(store)
    later = time.time() + 3600
    error = ErrorInfo("TimeoutError", "slow", None)
    change = Finish(task_id, OWNER, State.QUEUED, error=error, run_at=later)
    assert await store.finish([change]) == [True]
    record = await must_get(store, task_id)
    assert record.state is State.QUEUED
    assert record.run_at == later
    assert record.attempts == 1  # the attempt counts
    assert record.error == error
    assert (record.started_at, record.finished_at) == (None, None)
    assert (record.lease_owner, record.lease_expires_at) == (None, None)
    assert record.version == running.version + 1
    assert await store.claim(OWNER, ["default"], 1, LEASE) == []  # not due yet


async def test_finish_release_refunds_attempt_and_keeps_error(store: Store) -> None:
    task_id = (await add(store, max_attempts=3))[0]
    await claim_one(store)
    error = ErrorInfo("OSError", "disk", "tb")
    retry_now = Finish(task_id, OWNER, State.QUEUED, error=error, run_at=time.time() - 1)
    assert await store.finish([retry_now]) == [True]
    second = await claim_one(store)
    assert second.attempts == 2
    run_at = second.run_at

    assert await store.finish([Finish(task_id, OWNER, State.QUEUED, refund=True)]) == [True]
    record = await must_get(store, task_id)
    assert record.state is State.QUEUED
    assert record.attempts == 1
    assert record.error == error  # a release does not erase why the last attempt failed
    assert record.run_at == run_at
    assert (record.started_at, record.finished_at, record.lease_owner) == (None, None, None)
    assert record.version == second.version + 1


async def test_finish_applies_only_for_the_owner_of_a_running_task(store: Store) -> None:
    mine, stolen, cancelled = await add(store, 3)
    await store.claim(OWNER, ["default"], 3, LEASE)
    await store.cancel(cancelled)
    before = await must_get(store, stolen)

    applied = await store.finish(
        [
            Finish(mine, OWNER, State.SUCCEEDED, result_json="1"),
            Finish(stolen, "someone-else", State.SUCCEEDED, result_json="2"),
            Finish(cancelled, OWNER, State.SUCCEEDED, result_json="3"),
            Finish(new_id(), OWNER, State.SUCCEEDED),
        ]
    )
    assert applied == [True, False, False, False]
    assert await store.get(stolen) == before
    record = await must_get(store, cancelled)
    assert record.state is State.CANCELLING  # asked to stop: only a confirmed cancel applies
    assert record.result is None
    # finished already: a second finish of the same task does not apply either
    assert await store.finish([Finish(mine, OWNER, State.FAILED)]) == [False]
    assert (await must_get(store, mine)).state is State.SUCCEEDED


async def test_concurrent_finishes_report_per_call(store: Store) -> None:
    ids = await add(store, 6)
    await store.claim(OWNER, ["default"], 6, LEASE)
    results = await asyncio.gather(
        *(
            store.finish([Finish(task_id, OWNER if n % 2 == 0 else "x", State.SUCCEEDED)])
            for n, task_id in enumerate(ids)
        )
    )
    assert results == [[n % 2 == 0] for n in range(6)]


async def test_two_finishes_of_one_task_in_one_batch_only_one_applies(store: Store) -> None:
    task_id = (await add(store))[0]
    await claim_one(store)
    results = await asyncio.gather(  # submitted together: one transaction
        store.finish([Finish(task_id, OWNER, State.SUCCEEDED, result_json="1")]),
        store.finish([Finish(task_id, OWNER, State.FAILED, error=ErrorInfo("E", "m"))]),
    )
    assert sorted(r[0] for r in results) == [False, True]
    record = await must_get(store, task_id)
    assert record.state is (State.SUCCEEDED if results[0] == [True] else State.FAILED)


async def test_progress_only_for_the_owner_while_running(store: Store) -> None:
    task_id = (await add(store))[0]
    await store.set_progress(task_id, OWNER, Progress(1, 10, "queued?"))
    assert (await must_get(store, task_id)).progress == Progress(0, None, None)

    await claim_one(store)
    await store.set_progress(task_id, OWNER, Progress(2.5, 10, "working"))
    assert (await must_get(store, task_id)).progress == Progress(2.5, 10, "working")
    await store.set_progress(task_id, "intruder", Progress(9, 10, "nope"))
    assert (await must_get(store, task_id)).progress == Progress(2.5, 10, "working")

    # several reports in one batch: the last one wins
    await asyncio.gather(
        *(store.set_progress(task_id, OWNER, Progress(n, 10, f"step {n}")) for n in range(5))
    )
    assert (await must_get(store, task_id)).progress == Progress(4, 10, "step 4")

    await store.finish([Finish(task_id, OWNER, State.SUCCEEDED)])
    await store.set_progress(task_id, OWNER, Progress(7, 10, "late"))
    assert (await must_get(store, task_id)).progress == Progress(4, 10, "step 4")
