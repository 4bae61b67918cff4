"""Schedules in the store: first registration wins, one task per slot, pause and resume."""

from __future__ import annotations

import asyncio
import dataclasses

from tasks.store import Store
from tests.store.conftest import StoreFactory
from tests.store.contract import new_task


def slot_task(name: str, slot: float) -> object:
    return dataclasses.replace(new_task(), idempotency_key=f"schedule:{name}:{slot:.0f}")


async def test_the_first_registration_decides_where_a_schedule_starts(store: Store) -> None:
    await store.register_schedules({"nightly": 100.0})
    await store.register_schedules({"nightly": 200.0, "hourly": 50.0})
    states = await store.schedule_states()
    assert {n: (s.last_slot, s.paused) for n, s in states.items()} == {
        "nightly": (100.0, False),
        "hourly": (50.0, False),
    }


async def test_a_slot_fired_by_two_processes_at_once_makes_one_task(
    store_factory: StoreFactory,
) -> None:
    first, second = await store_factory(), await store_factory()
    await first.register_schedules({"s": 0.0})
    outcomes = await asyncio.gather(
        first.fire_schedule("s", 60.0, [slot_task("s", 60.0)]),  # type: ignore[list-item]
        second.fire_schedule("s", 60.0, [slot_task("s", 60.0)]),  # type: ignore[list-item]
    )
    created = [answer.created for answers in outcomes for answer in answers]
    assert sorted(created) == [False, True]
    assert outcomes[0][0].id == outcomes[1][0].id
    assert await first.count_queued() == 1
    assert (await second.schedule_states())["s"].last_slot == 60.0


async def test_the_last_fired_slot_only_moves_forward(store: Store) -> None:
    await store.register_schedules({"s": 0.0})
    await store.fire_schedule("s", 120.0, [slot_task("s", 120.0)])  # type: ignore[list-item]
    await store.fire_schedule("s", 60.0, [slot_task("s", 60.0)])  # type: ignore[list-item]
    assert (await store.schedule_states())["s"].last_slot == 120.0


async def test_pause_and_resume(store: Store) -> None:
    await store.register_schedules({"s": 0.0})
    paused = await store.set_schedule_paused("s", True)
    assert paused is not None
    assert paused.paused
    assert (await store.schedule_states())["s"].paused
    resumed = await store.set_schedule_paused("s", False)
    assert resumed is not None
    assert not resumed.paused
    assert await store.set_schedule_paused("unknown", True) is None
