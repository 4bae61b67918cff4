"""The SQLite backend, on aiosqlite: one file, WAL mode, group-committed writes.

Each transaction is one plain ``sqlite3`` function run on the writer's
aiosqlite thread, so a batch costs one round trip to that thread. Several
processes may share the file; the busy timeout plus a bounded retry absorb
contention.

=====================  ======================================================
``store``              :class:`SQLiteStore`: lifecycle, writes submitted to
                       group commit, the batch runner and its retries
``connection``         URL, connections, pragmas, migrations, file identity
``checkpoints``        WAL checkpoints off the write path
``transaction``        one batch as one ``BEGIN IMMEDIATE`` transaction
``writes``             inserts, finishes, progress and claims of a batch
``control``            lease renewal, release, reclaim, cancel, retry, purge
``reads``              queries on the read-only connection
``binding``            placeholders, chunks, storable text and numbers
=====================  ======================================================

The static SQL is in ``tasks/store/sql/sqlite/queries.sql``.
"""

from tasks.store.sqlite.connection import sqlite_path
from tasks.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore", "sqlite_path"]
