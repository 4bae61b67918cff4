"""SQLite specifics: WAL checkpoints run off the write path and keep the log small."""

from __future__ import annotations

import os
import time

from tasks.model import NewTask, State, new_id
from tasks.store.sqlite import SQLiteStore
from tests.conftest import eventually


def _size(path: str) -> int:
    return os.path.getsize(path)


def _task() -> NewTask:
    now = time.time()
    return NewTask(new_id(), "noop", "default", "[]", "{}", 0, 3, now - 1, now, None)


async def test_commits_never_checkpoint_and_the_checkpointer_empties_the_wal(
    database_url: str,
) -> None:
    store = SQLiteStore(database_url)
    await store.open()
    wal = store.path + "-wal"
    try:
        for _ in range(20):
            await store.insert([_task() for _ in range(200)])
        assert _size(wal) > 0
        writer = store._writer
        assert writer is not None
        [(pages,)] = list(await writer.execute_fetchall("PRAGMA wal_autocheckpoint"))
        assert pages == 0  # commits never run a checkpoint themselves

        async def emptied() -> bool:  # the checkpointer truncates the log once idle
            return _size(wal) == 0

        await eventually(emptied, timeout=30)
        assert (await store.count_by_state())[State.QUEUED] == 4000
    finally:
        await store.close()
