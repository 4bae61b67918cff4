"""Processes starting together on a new SQLite file all open it (``hypercorn -w N``).

The first switch to WAL mode needs the file alone, and SQLite answers the
losers of that race "database is locked" at once instead of waiting on the
busy timeout: a worker of a fresh deployment would fail to start.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tasks.store.sqlite import SQLiteStore

ROUNDS = 20
OPENERS = 4


async def test_openers_racing_on_a_new_file_all_open(tmp_path: Path) -> None:
    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'race{round_}.sqlite3'}"
        stores = [SQLiteStore(url) for _ in range(OPENERS)]
        outcomes = await asyncio.gather(*(s.open() for s in stores), return_exceptions=True)
        for store in stores:
            await store.close()
        assert [o for o in outcomes if isinstance(o, BaseException)] == [], round_
