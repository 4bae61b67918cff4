"""Enqueue through the Python API while the store cannot be written (no server process)."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from quart import Quart

from tasks import Tasks
from tasks.errors import StoreUnavailableError
from tasks.model import NewTask, new_id
from tasks.store.sqlite import SQLiteStore


def _chattr(flag: str, path: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)


async def test_enqueue_during_a_write_fault_raises_store_unavailable_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """Root ignores permissions, so the write-ahead log gets the immutable flag instead."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not available to make a file read-only for root")
    db = tmp_path / "tasks.sqlite3"
    tasks = Tasks(database_url=f"sqlite:///{db}", workers=False)

    @tasks.task(name="note")
    async def note(text: str) -> str:
        return text

    app = Quart(__name__)
    tasks.init_app(app)

    def count() -> int:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            rows: int = conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        return rows

    async with app.test_app():
        await note.enqueue("before")
        wal = Path(f"{db}-wal")
        done = _chattr("+i", wal)
        if done.returncode != 0:
            pytest.skip(f"chattr +i does not work here: {done.stderr.decode().strip()}")
        try:
            with pytest.raises(StoreUnavailableError, match=str(db)):
                await note.enqueue("during")
            with pytest.raises(StoreUnavailableError):
                await tasks.enqueue_many([note.call("a"), note.call("b")])
        finally:
            assert _chattr("-i", wal).returncode == 0
        assert count() == 1
        await note.enqueue("after")
        assert count() == 2


async def test_a_writer_that_stays_locked_out_gets_store_unavailable_not_locked(
    tmp_path: Path,
) -> None:
    """Another process holds the write lock past the busy timeout and every retry."""
    db = tmp_path / "tasks.sqlite3"
    store = SQLiteStore(f"sqlite:///{db}", busy_timeout=0.1)
    await store.open()
    try:
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreUnavailableError, match="other writers held it") as caught:
                await store.insert([_new_task()])
            assert "database is locked" not in str(caught.value)
            other.execute("ROLLBACK")
        assert await store.count_queued() == 0
        await store.insert([_new_task()])
        assert await store.count_queued() == 1
    finally:
        await store.close()


def _new_task() -> NewTask:
    now = time.time()
    return NewTask(
        id=new_id(),
        name="note",
        queue="default",
        args_json="[]",
        kwargs_json="{}",
        priority=0,
        max_attempts=1,
        run_at=now,
        created_at=now,
        idempotency_key=None,
    )
