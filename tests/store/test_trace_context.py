"""Store contract: a task's trace context (migration 0007) is stored and read back.

Every test runs against each backend (the ``store`` fixture, tests/store/conftest.py).
"""

from __future__ import annotations

import dataclasses

from tasks.store import Store
from tests.store.contract import claim_one, must_get, new_task

CONTEXT = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'


async def test_trace_context_round_trips_on_every_insert_path(store: Store) -> None:
    plain = [dataclasses.replace(new_task(), trace_context=CONTEXT) for _ in range(3)]
    keyed = dataclasses.replace(new_task(key="traced"), trace_context=CONTEXT)
    untraced = new_task()
    await store.insert([*plain, keyed, untraced])
    for task in (*plain, keyed):
        assert (await must_get(store, task.id)).trace_context == CONTEXT
    assert (await must_get(store, untraced.id)).trace_context is None


async def test_a_claimed_record_carries_it(store: Store) -> None:
    task = dataclasses.replace(new_task(), trace_context=CONTEXT)
    await store.insert([task])
    claimed = await claim_one(store)
    assert claimed.id == task.id
    assert claimed.trace_context == CONTEXT
