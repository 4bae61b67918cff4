"""SQLite wake sockets: a commit that makes work due wakes the other stores of the file.

Real stores on a real file, each with its own datagram socket, as two
processes would have. A socket left by a dead process is removed by the next
sender; nothing a sender meets (no listener, no directory) fails a write.
The last test is about the other change of this round on the same path: a
small batch commits on the loop's thread only when the write lock is free at
once.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tasks.model import NewTask
from tasks.store.sqlite import SQLiteStore
from tasks.store.sqlite import store as store_module
from tests.conftest import eventually
from tests.store.contract import new_task


def _task() -> NewTask:
    return new_task("noop")


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, SQLiteStore]]:
    url = f"sqlite:///{tmp_path / 'tasks.sqlite3'}"
    sender, listener = SQLiteStore(url), SQLiteStore(url)
    await sender.open()
    await listener.open()
    try:
        yield sender, listener
    finally:
        await listener.close()
        await sender.close()


async def test_each_due_insert_wakes_the_listening_store(
    stores: tuple[SQLiteStore, SQLiteStore],
) -> None:
    sender, listener = stores
    calls: list[str] = []
    listener.on_new_work(lambda: calls.append("woken"))
    await sender.insert([_task()])
    await eventually(lambda: _true(len(calls) >= 1))
    await sender.insert([_task()])
    await eventually(lambda: _true(len(calls) >= 2))
    assert listener.wake_directory == sender.wake_directory


async def test_wake_others_wakes_every_other_listener_but_not_itself(
    stores: tuple[SQLiteStore, SQLiteStore],
) -> None:
    sender, listener = stores
    woken, own = asyncio.Event(), asyncio.Event()
    listener.on_new_work(woken.set)
    sender.on_new_work(own.set)
    sender.wake_others()
    await asyncio.wait_for(woken.wait(), 10)
    assert not own.is_set()


async def test_a_socket_left_by_a_dead_process_is_removed_and_the_write_commits(
    stores: tuple[SQLiteStore, SQLiteStore],
) -> None:
    sender, listener = stores
    woken = asyncio.Event()
    listener.on_new_work(woken.set)
    stale = Path(listener.wake_directory) / "999999-dead"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(stale))
    dead.close()  # bound, then gone without removing its file: like kill -9
    assert stale.exists()
    [inserted] = await sender.insert([_task()])
    assert inserted.created
    await asyncio.wait_for(woken.wait(), 10)  # the live listener still hears it
    assert not stale.exists()


async def test_a_store_with_no_listener_anywhere_writes_as_before(tmp_path: Path) -> None:
    store = SQLiteStore(f"sqlite:///{tmp_path / 'tasks.sqlite3'}")
    await store.open()
    try:
        [inserted] = await store.insert([_task()])
        assert inserted.created
        assert "tasks.sqlite3-wake" not in os.listdir(tmp_path)
    finally:
        await store.close()


async def test_a_path_too_long_for_a_socket_address_still_wakes(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    url = f"sqlite:///{deep / 'tasks.sqlite3'}"
    sender, listener = SQLiteStore(url), SQLiteStore(url)
    await sender.open()
    await listener.open()
    try:
        woken = asyncio.Event()
        listener.on_new_work(woken.set)
        assert len(listener.wake_directory) > 108
        await sender.insert([_task()])
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        await listener.close()
        await sender.close()
    assert os.listdir(listener.wake_directory) == []  # closed: its socket removed


async def _true(value: bool) -> bool:
    return value


async def test_a_small_batch_meeting_another_writer_waits_on_the_thread_and_commits(
    stores: tuple[SQLiteStore, SQLiteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small batch runs on the loop's thread only if the write lock is free at once;
    while another process holds it, the batch waits on the writer's thread (the loop
    keeps running) and commits once the lock is released, instead of failing."""
    sender, _ = stores
    on_thread = asyncio.Event()
    real = store_module.on_connection_thread

    def spy(*args: Any) -> Any:
        on_thread.set()
        return real(*args)

    monkeypatch.setattr(store_module, "on_connection_thread", spy)
    other = sqlite3.connect(sender.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process writing
        insert = asyncio.create_task(sender.insert([_task()]))
        await asyncio.wait_for(on_thread.wait(), 10)  # the loop was not blocked meanwhile
        assert not insert.done()
        other.execute("COMMIT")
        [inserted] = await asyncio.wait_for(insert, 10)
    finally:
        other.close()
    assert inserted.created
    assert await sender.get(inserted.id) is not None


async def test_a_listener_bound_within_the_same_tick_as_a_listing_is_still_woken(
    stores: tuple[SQLiteStore, SQLiteStore],
) -> None:
    """Directory times are coarse: a socket bound in the tick in which a sender listed
    the directory leaves its time unchanged. The sender lists again while the time it
    saw is recent, so the new listener is not missed (here the time is set back by
    hand, as a coarse clock would leave it)."""
    sender, listener = stores
    listener.on_new_work(lambda: None)
    directory = listener.wake_directory
    sender.wake_others()  # lists the directory: the listener only
    seen = os.stat(directory).st_mtime_ns
    late = SQLiteStore(sender.url)
    await late.open()
    try:
        woken = asyncio.Event()
        late.on_new_work(woken.set)
        os.utime(directory, ns=(seen, seen))  # same tick: the time did not move
        sender.wake_others()
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        await late.close()
