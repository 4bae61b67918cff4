"""Wake-ups between stores of one database (as between processes), on both backends.

PostgreSQL through LISTEN/NOTIFY, SQLite through a datagram socket per
listening store. A due insert signals the others by itself; ``wake_others``
signals them after any other commit that made work claimable.
"""

from __future__ import annotations

import asyncio

from tasks.store.postgres import PostgresStore
from tasks.store.sqlite import SQLiteStore
from tests.conftest import eventually
from tests.store.conftest import StoreFactory
from tests.store.contract import add, new_task


async def _listening_other(store_factory: StoreFactory) -> tuple[object, asyncio.Event]:
    other = await store_factory()
    assert isinstance(other, SQLiteStore | PostgresStore)
    woken = asyncio.Event()
    other.on_new_work(woken.set)

    async def listening() -> bool:
        return other.listening

    await eventually(listening)
    return other, woken


async def test_wake_others_wakes_a_listening_store(store_factory: StoreFactory) -> None:
    store = await store_factory()
    _, woken = await _listening_other(store_factory)
    store.wake_others()
    await asyncio.wait_for(woken.wait(), 10)


async def test_a_due_insert_wakes_a_listening_store(store_factory: StoreFactory) -> None:
    store = await store_factory()
    _, woken = await _listening_other(store_factory)
    task = new_task("noop")
    [inserted] = await store.insert([task])
    assert inserted.created
    await asyncio.wait_for(woken.wait(), 10)


async def test_a_release_wakes_a_listening_store(store_factory: StoreFactory) -> None:
    """Work given back (a drain's release, like a retry or a reclaim) is due again at once."""
    store = await store_factory()
    [task_id] = await add(store)
    [claimed] = await store.claim("me", ["default"], 1, 30)
    assert claimed.id == task_id
    _, woken = await _listening_other(store_factory)  # listening only from here on
    assert await store.release("me", [task_id]) == 1
    await asyncio.wait_for(woken.wait(), 10)
