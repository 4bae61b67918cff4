"""Store contract: the worker registry and owner liveness (issue 19.1, issue 20.2).

Every test runs against each backend. A second store on the same database plays
another process; closing a store without unregistering is how a process dies
here (its lock file or advisory-lock session goes, its row stays).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tasks.model import Finish, State
from tasks.store import Reclaimed, Store
from tasks.store.fleet import WorkerInfo, WorkerRow
from tasks.store.sqlite import SQLiteStore
from tests.conftest import eventually
from tests.store.conftest import StoreFactory
from tests.store.contract import add, claim_one, must_get


def info(owner: str, *, queues: tuple[str, ...] = ("default",)) -> WorkerInfo:
    return WorkerInfo(owner, "host-a", 4242, "1.2.3", queues, 8, time.time() - 5)


async def rows(store: Store) -> dict[str, WorkerRow]:
    return {row.info.id: row for row in await store.workers()}


async def test_a_registered_worker_is_listed_with_its_running_tasks(store: Store) -> None:
    before = time.time()
    await store.register_worker(info("w1", queues=("default", "mail")))
    running, done, queued = await add(store, 3)
    await claim_one(store, "w1")
    await claim_one(store, "w1")
    await store.finish([Finish(done, "w1", State.SUCCEEDED)])
    await store.cancel(running)  # cancelling: still held by its owner

    row = (await rows(store))["w1"]
    assert row.info == WorkerInfo(
        "w1", "host-a", 4242, "1.2.3", ("default", "mail"), 8, row.info.started_at
    )
    assert row.info.started_at < before
    assert row.heartbeat_at >= before
    assert row.running == (running,)
    assert row.lost_at is None
    assert row.live is True
    assert queued not in row.running


async def test_heartbeat_refreshes_and_says_whether_the_row_exists(store: Store) -> None:
    await store.register_worker(info("w1"))
    first = (await rows(store))["w1"].heartbeat_at
    assert await store.worker_heartbeat("w1") is True
    assert (await rows(store))["w1"].heartbeat_at >= first
    assert await store.worker_heartbeat("nobody") is False
    assert "nobody" not in await rows(store)


async def test_unregister_removes_the_row_and_the_mark(
    store: Store, store_factory: StoreFactory
) -> None:
    other = await store_factory()
    await store.register_worker(info("w1"))
    assert (await other.owner_liveness()).get("w1") is True
    await store.unregister_worker("w1")
    assert await rows(other) == {}
    assert "w1" not in await other.owner_liveness()


async def test_a_dead_owner_is_reported_and_its_tasks_reclaimed_whatever_the_lease(
    store_factory: StoreFactory,
) -> None:
    survivor, victim = await store_factory(), await store_factory()
    await survivor.register_worker(info("alive"))
    await victim.register_worker(info("dead"))
    retried, last_try, stopping, theirs = await add(survivor, 4, max_attempts=2)
    await claim_one(victim, "dead", lease=600)
    await claim_one(victim, "dead", lease=600)
    await survivor.claim("dead", ["default"], 1, 600)
    await survivor.claim("alive", ["default"], 1, 600)
    await victim.finish([Finish(last_try, "dead", State.QUEUED, run_at=time.time())])
    await claim_one(victim, "dead", lease=600)  # its second and last attempt
    await survivor.cancel(stopping)
    assert (await survivor.owner_liveness()) == {"alive": True, "dead": True}

    await victim.close()  # the process dies: its mark goes, its row stays

    async def dead() -> bool:
        return (await survivor.owner_liveness()).get("dead") is False

    await eventually(dead, timeout=10)
    reclaimed = await survivor.reclaim_owners(["dead"], "gone")
    assert set(reclaimed.requeued) == {retried}
    assert set(reclaimed.failed) == {last_try}
    assert set(reclaimed.cancelled) == {stopping}
    failed = await must_get(survivor, last_try)
    assert failed.state is State.FAILED
    assert failed.error is not None
    assert (failed.error.type, failed.error.message) == ("WorkerLostError", "gone")
    assert [e.type for e in failed.errors] == ["WorkerLostError"]
    assert (await must_get(survivor, theirs)).lease_owner == "alive"
    row = (await rows(survivor))["dead"]
    assert row.lost_at is not None
    assert row.running == ()
    assert "dead" not in await survivor.owner_liveness()  # marked lost: looked at no more
    assert await survivor.reclaim_owners(["dead"], "gone") == Reclaimed([], [], [])


async def test_expired_leases_of_owners_known_alive_are_kept(store: Store) -> None:
    kept, taken = await add(store, 2, max_attempts=2)
    await claim_one(store, "slow", lease=0.01)
    await claim_one(store, "unknown", lease=0.01)
    requeued: list[str] = []

    async def reclaimed() -> bool:
        requeued.extend((await store.reclaim_expired("lost", keep={"slow", "other"})).requeued)
        return bool(requeued)

    await eventually(reclaimed, timeout=10, interval=0.005)
    assert requeued == [taken]
    record = await must_get(store, kept)
    assert record.lease_expires_at is not None
    assert record.lease_expires_at < time.time()  # expired, and still its owner's
    assert (record.state, record.lease_owner) == (State.RUNNING, "slow")
    assert await store.renew_leases("slow", [kept], 30) == set()
    assert (await store.reclaim_expired("lost")).requeued == []


async def test_prune_deletes_rows_with_old_heartbeats_only(store: Store) -> None:
    await store.register_worker(info("w1"))
    assert await store.prune_workers(time.time() - 3600) == 0
    assert await store.prune_workers(time.time() + 1) == 1
    assert await rows(store) == {}
    assert await store.worker_heartbeat("w1") is False
    await store.register_worker(info("w1"))  # what a live process does then
    assert set(await rows(store)) == {"w1"}


async def test_sqlite_without_a_lock_directory_registers_with_unknown_liveness(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "tasks.sqlite3-workers").write_text("a file where the directory would go")
    store = SQLiteStore(f"sqlite:///{tmp_path / 'tasks.sqlite3'}")
    await store.open()
    try:
        await store.register_worker(info("w1"))
        [row] = await store.workers()
        assert (row.info.id, row.live) == ("w1", None)
        assert await store.owner_liveness() == {}
        assert "no liveness lock file for w1" in caplog.text
    finally:
        await store.close()
