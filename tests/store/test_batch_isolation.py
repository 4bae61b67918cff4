"""One request's bad value fails that request alone; the backlog bound is exact.

Writes submitted in the same turn of the event loop share one group-commit
transaction. A value the database refuses (here an integer past 64 bits and
a result that is not valid Unicode, both past the engine's own checks, as a
store caller could send them) must fail only its own call: the other calls
of the batch commit.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tasks.errors import QueueFullError, WriteRejectedError
from tasks.model import Finish, State
from tasks.store import Store
from tests.store.conftest import StoreFactory
from tests.store.contract import OWNER, add, must_get, new_task


async def test_a_refused_value_fails_only_its_own_call(store: Store) -> None:
    first, second = await add(store, 2)
    claimed = await store.claim(OWNER, ["default"], 2, 30)
    assert {r.id for r in claimed} == {first, second}
    good_task = new_task()
    bad_task = dataclasses.replace(new_task(), max_attempts=2**70)
    outcomes = await asyncio.gather(
        store.insert([good_task]),
        store.insert([bad_task]),
        store.finish([Finish(first, OWNER, State.SUCCEEDED, result_json='"fine"')]),
        store.finish([Finish(second, OWNER, State.SUCCEEDED, result_json='"\ud800"')]),
        return_exceptions=True,
    )
    good_insert, bad_insert, good_finish, bad_finish = outcomes
    assert isinstance(bad_insert, WriteRejectedError), bad_insert
    assert isinstance(bad_finish, WriteRejectedError), bad_finish
    assert "refused the write" in str(bad_insert)
    assert [(i.id, i.created) for i in good_insert] == [(good_task.id, True)]  # type: ignore[union-attr]
    assert good_finish == [True]
    assert await store.get(bad_task.id) is None
    assert (await must_get(store, first)).result == "fine"
    unfinished = await must_get(store, second)
    assert (unfinished.state, unfinished.result) == (State.RUNNING, None)


async def test_a_lone_refused_call_gets_the_same_error(store: Store) -> None:
    bad_task = dataclasses.replace(new_task(), max_attempts=2**70)
    with pytest.raises(WriteRejectedError):
        await store.insert([bad_task])
    assert sum((await store.count_by_state()).values()) == 0


async def test_the_backlog_bound_holds_exactly_under_concurrent_inserts(
    store_factory: StoreFactory,
) -> None:
    """Two stores on one database (as two processes), 300 inserts at once, a bound of 100."""
    stores = [await store_factory(), await store_factory()]
    outcomes = await asyncio.gather(
        *(stores[n % 2].insert([new_task()], max_queued=100) for n in range(300)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, QueueFullError)]
    accepted = [o for o in outcomes if isinstance(o, list)]
    assert (len(accepted), len(refused)) == (100, 200)
    assert "the task queue is full (100 of 100 queued)" in str(refused[0])
    assert await stores[0].count_queued() == 100


async def test_the_bound_counts_only_queued_tasks(store: Store) -> None:
    await add(store, 2)
    await store.claim(OWNER, ["default"], 1, 30)
    await store.insert([new_task()], max_queued=2)  # one running, one queued: room for one
    with pytest.raises(QueueFullError):
        await store.insert([new_task()], max_queued=2)
    with pytest.raises(QueueFullError):  # a call's tasks are refused together
        await store.insert([new_task(), new_task()], max_queued=3)
    assert await store.count_queued() == 2
