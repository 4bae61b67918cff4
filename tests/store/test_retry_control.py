"""Store contract: snoozes, the error history and per-task timeouts (issue 16.6).

Every test runs against each backend (the ``store`` fixture, tests/store/conftest.py).
"""

from __future__ import annotations

import time

from tasks.model import ErrorInfo, Finish, State
from tasks.store import Store
from tests.store.contract import OWNER, add, claim_one, must_get, wait_for_reclaim


def _core(error: ErrorInfo) -> tuple[str, str, str | None]:
    return error.type, error.message, error.traceback


async def test_snooze_gives_the_attempt_back_and_counts(store: Store) -> None:
    task_id = (await add(store, max_attempts=1))[0]
    # The first snooze is due at once (run_at in the past), the second an hour on.
    for count, run_at in ((1, time.time() - 1), (2, time.time() + 3600)):
        claimed = await claim_one(store)
        assert claimed.attempts == 1
        change = Finish(task_id, OWNER, State.QUEUED, run_at=run_at, refund=True, snooze=True)
        assert await store.finish([change]) == [True]
        record = await must_get(store, task_id)
        assert record.state is State.QUEUED
        assert (record.attempts, record.snoozes) == (0, count)
        assert record.run_at == run_at
        assert record.errors == []
        assert record.error is None
    assert await store.claim(OWNER, ["default"], 1, 30.0) == []


async def test_a_release_neither_counts_a_snooze_nor_touches_the_history(store: Store) -> None:
    task_id = (await add(store, max_attempts=2))[0]
    await claim_one(store)
    first = ErrorInfo("ValueError", "first", "tb 1")
    await store.finish([Finish(task_id, OWNER, State.QUEUED, error=first, run_at=time.time())])
    await claim_one(store)
    await store.finish([Finish(task_id, OWNER, State.QUEUED, refund=True, error=first)])
    record = await must_get(store, task_id)
    assert (record.attempts, record.snoozes) == (1, 0)
    assert [_core(e) for e in record.errors] == [_core(first)]


async def test_every_attempts_error_is_kept_newest_last(store: Store) -> None:
    task_id = (await add(store, max_attempts=3))[0]
    errors = [
        ErrorInfo("ValueError", "first", "Traceback 1", at=1000.5),
        ErrorInfo("KeyError", "zweite \u00fc\x00 \ud800 end", "Traceback 2"),
        ErrorInfo("RuntimeError", "third", None),
    ]
    before = time.time()
    for attempt, error in enumerate(errors, start=1):
        claimed = await claim_one(store)
        assert claimed.attempts == attempt
        state = State.FAILED if attempt == 3 else State.QUEUED
        run_at = None if attempt == 3 else time.time()
        assert await store.finish([Finish(task_id, OWNER, state, error=error, run_at=run_at)])
        assert [e.attempt for e in (await must_get(store, task_id)).errors] == list(
            range(1, attempt + 1)
        )
    record = await must_get(store, task_id)
    assert record.state is State.FAILED
    assert [e.type for e in record.errors] == ["ValueError", "KeyError", "RuntimeError"]
    assert record.errors[0].at == 1000.5
    assert record.errors[0].traceback == "Traceback 1"
    assert all(e.at is not None and e.at >= before for e in record.errors[1:])
    # Unstorable characters are cleaned as in the latest error, never failing the write.
    assert record.errors[1].message.startswith("zweite \u00fc")
    assert record.errors[1].message.endswith(" end")
    assert record.errors[1].message == record.errors[1].message.encode().decode()
    assert record.error is not None
    assert _core(record.error) == _core(record.errors[-1])
    # A manual retry starts fresh attempts and snoozes and keeps the history.
    retried = await store.retry(task_id)
    assert retried is not None
    assert (retried.attempts, retried.snoozes, len(retried.errors)) == (0, 0, 3)
    assert retried.error is None


async def test_a_lost_worker_that_fails_the_task_is_in_the_history(store: Store) -> None:
    task_id = (await add(store, max_attempts=1))[0]
    await store.claim(OWNER, ["default"], 1, 0.05)
    _, failed = await wait_for_reclaim(store, "worker lost")
    assert failed == {task_id}
    record = await must_get(store, task_id)
    assert [(e.type, e.message, e.attempt) for e in record.errors] == [
        ("WorkerLostError", "worker lost", 1)
    ]


async def test_a_tasks_own_timeout_round_trips(store: Store) -> None:
    timed, plain = await add(store, timeout=2.5), await add(store)
    assert (await must_get(store, timed[0])).timeout == 2.5
    assert (await must_get(store, plain[0])).timeout is None
    claimed = {r.id: r for r in await store.claim(OWNER, ["default"], 2, 30.0)}
    assert claimed[timed[0]].timeout == 2.5
    assert claimed[plain[0]].timeout is None
    listed = await store.list()
    assert {r.id: r.timeout for r in listed.tasks} == {timed[0]: 2.5, plain[0]: None}
