"""Times written by a batch are taken when it runs, not when it was queued.

A second connection holds the write lock (SQLite ``BEGIN EXCLUSIVE``,
PostgreSQL ``LOCK TABLE``) while a claim waits for it. Once the lock is let
go, the claim's lease must still be a whole lease long, and ``started_at``
must not predate the moment the claim could run.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tasks.store import Store
from tasks.store.sqlite import sqlite_path
from tests.store.contract import OWNER, add, must_get

STALL = 1.5
"""Seconds the other connection holds the lock (a fault's length, not a wait for an event)."""
LEASE = 2.0


@contextlib.asynccontextmanager
async def write_lock(url: str) -> AsyncIterator[None]:
    """Hold the database's write lock from another connection until the block ends."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("COMMIT")
            conn.close()
        return
    pg = await asyncpg.connect(url)
    try:
        async with pg.transaction():
            await pg.execute("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await pg.close()


async def test_a_claim_that_waited_for_the_lock_gets_a_whole_lease(
    store: Store, store_url: str
) -> None:
    [task_id] = await add(store)
    async with write_lock(store_url):
        claim = asyncio.ensure_future(store.claim(OWNER, ["default"], 1, LEASE))
        await asyncio.sleep(STALL)
        assert not claim.done(), "the claim should be waiting for the write lock"
        released = time.time()
    [record] = await asyncio.wait_for(claim, timeout=30)
    assert record.id == task_id
    assert record.lease_expires_at is not None
    assert record.started_at is not None
    assert record.lease_expires_at >= released + LEASE - 0.05
    assert record.started_at >= released - 0.05
    stored = await must_get(store, task_id)
    assert stored.lease_expires_at == pytest.approx(record.lease_expires_at)


async def test_a_renewal_that_waited_for_the_lock_extends_from_when_it_ran(
    store: Store, store_url: str
) -> None:
    await add(store)
    [record] = await store.claim(OWNER, ["default"], 1, LEASE)
    async with write_lock(store_url):
        renew = asyncio.ensure_future(store.renew_leases(OWNER, [record.id], LEASE))
        await asyncio.sleep(STALL)
        assert not renew.done(), "the renewal should be waiting for the write lock"
        released = time.time()
    assert await asyncio.wait_for(renew, timeout=30) == set()
    stored = await must_get(store, record.id)
    assert stored.lease_expires_at is not None
    assert stored.lease_expires_at >= released + LEASE - 0.05
