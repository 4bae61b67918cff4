"""The PostgreSQL backend, on asyncpg: a connection pool, group-committed writes.

Every state change goes through :class:`~tasks.store.batching.GroupCommit`:
concurrent inserts, claims, finishes and progress updates of this process
share one transaction on one pooled connection. Reads use the pool directly.
Several processes (and hosts) may share the database: claims lock their rows
with ``FOR UPDATE SKIP LOCKED``, every other change is guarded by the state
and lease owner it expects, and a transaction the server aborts as a deadlock
or serialisation failure is retried as a whole.

Writes that make work available (inserts, retries, releases, requeues) send
``NOTIFY`` in the same transaction; :meth:`PostgresStore.on_new_work` listens
on a dedicated connection that reconnects by itself.

Timestamps are Unix epoch seconds from this process's clock, as in SQLite, so
hosts sharing a database need synchronised clocks (NTP) for leases to work.

=====================  ======================================================
``store``              :class:`PostgresStore`: lifecycle, writes submitted to
                       group commit, the batch runner and its retries
``connection``         URL description, error classes, the pool's settings,
                       migrations
``notifications``      ``NOTIFY`` on commit, the reconnecting ``LISTEN``
``transaction``        one batch as one transaction, savepoints on failure
``writes``             inserts, finishes, progress and claims of a batch
``control``            lease renewal, release, reclaim, cancel, retry, purge
``reads``              queries on the pool
=====================  ======================================================

The static SQL is in ``tasks/store/sql/postgres/queries.sql``.
"""

from tasks.store.postgres.connection import describe_url
from tasks.store.postgres.store import PostgresStore

__all__ = ["PostgresStore", "describe_url"]
