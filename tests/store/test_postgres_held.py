"""PostgreSQL: claims skip limited tasks known to be held, and stop as soon as that
may have changed (see :mod:`tasks.store.postgres.held`).

The hint is made to last an hour here, so that only the events meant to end
it (a slot freed, a limited task added, in any process) can.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tasks.model import Finish, RowLimits, State
from tasks.store import Store
from tasks.store.postgres import PostgresStore, held
from tasks.store.postgres.claims import _LIMITS_LOCK
from tests.conftest import eventually
from tests.store.conftest import StoreFactory
from tests.store.contract import LEASE, OWNER, add

HOUR = RowLimits(rate_key="hourly", rate_limit=1, rate_period=3600.0)


@pytest.fixture
def backend_url(postgres_schema_url: str) -> str:
    return postgres_schema_url


async def hold(store: Store) -> None:
    """Start one task of the hourly rate limit, and let a claim find the next one held."""
    await add(store, 2, limits=HOUR)
    assert len(await store.claim(OWNER, ["default"], 10, LEASE)) == 1
    assert await store.claim(OWNER, ["default"], 10, LEASE) == []


async def listening(store_factory: StoreFactory) -> Store:
    """A store whose notification connection listens, as under a running engine."""
    store = await store_factory()
    store.on_new_work(lambda: None)
    assert isinstance(store, PostgresStore)
    await eventually(lambda: asyncio.sleep(0, store.listening))
    return store


@pytest.fixture(autouse=True)
def long_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(held, "HOLD_SECONDS", 3600.0)


async def test_claims_beside_held_tasks_do_not_queue_for_the_limits_lock(
    store_factory: StoreFactory, store_url: str
) -> None:
    store = await store_factory()
    await hold(store)
    [plain] = await add(store)
    assert [r.id for r in await store.claim(OWNER, ["default"], 10, LEASE)] == [plain]
    other = await asyncpg.connect(store_url)
    try:
        async with other.transaction():  # another process's limited claim, in progress
            await other.execute("SELECT pg_advisory_xact_lock($1)", _LIMITS_LOCK)
            [later] = await add(store)
            again = await asyncio.wait_for(store.claim(OWNER, ["default"], 10, LEASE), 10)
            assert [r.id for r in again] == [later]
    finally:
        await other.close()


async def test_a_limited_task_added_by_another_process_ends_the_hint(
    store_factory: StoreFactory,
) -> None:
    store, other = await listening(store_factory), await store_factory()
    await hold(store)
    [free] = await add(other, limits=RowLimits(concurrency_key="k", concurrency_limit=1))

    async def claimed() -> list[str]:
        return [r.id for r in await store.claim(OWNER, ["default"], 10, LEASE)]

    assert await eventually(claimed) == [free]


async def test_a_slot_freed_by_another_process_ends_the_hint(
    store_factory: StoreFactory,
) -> None:
    store, other = await listening(store_factory), await store_factory()
    one = RowLimits(concurrency_key="sync", concurrency_limit=1)
    first, second = await add(store, 2, limits=one)
    [running] = await other.claim("other", ["default"], 10, LEASE)
    assert running.id == first
    assert await store.claim(OWNER, ["default"], 10, LEASE) == []  # held: the slot is taken
    done = Finish(first, "other", State.SUCCEEDED, result_json="1")
    assert await other.finish([done]) == [True]

    async def claimed() -> list[str]:
        return [r.id for r in await store.claim(OWNER, ["default"], 10, LEASE)]

    assert await eventually(claimed) == [second]
