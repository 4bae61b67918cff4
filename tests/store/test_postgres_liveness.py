"""PostgreSQL liveness sessions: a dropped session is taken again, and a blip is no death.

A registered store holds its owner's advisory lock on a connection of its
own. Here the server ends that session (``pg_terminate_backend``, as an
administrator or a failover would) while the "process" lives: the session
must take the lock again on a new connection, and an observer polling
``owner_liveness`` all the while must never be told that the owner is dead.
"""

from __future__ import annotations

import time

import asyncpg

from tasks.store.fleet import WorkerInfo
from tasks.store.postgres import PostgresStore
from tasks.store.postgres.liveness import liveness_key
from tests.conftest import eventually

_HOLDER = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
    " AND classid::bigint * 4294967296 + objid::bigint = $1"
)


async def test_a_terminated_liveness_session_is_taken_again_and_never_seen_dead(
    postgres_schema_url: str,
) -> None:
    owner, observer = PostgresStore(postgres_schema_url), PostgresStore(postgres_schema_url)
    admin = await asyncpg.connect(postgres_schema_url)
    await owner.open()
    await observer.open()
    try:
        await owner.register_worker(WorkerInfo("w1", "h", 1, "0", ("default",), 1, time.time()))
        key = liveness_key("w1")
        first = await admin.fetchval(_HOLDER, key)
        assert first is not None
        assert (await observer.owner_liveness())["w1"] is True

        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
        seen: list[bool | None] = []

        async def held_again() -> bool:
            seen.append((await observer.owner_liveness()).get("w1"))
            holder = await admin.fetchval(_HOLDER, key)
            return holder is not None and holder != first

        await eventually(held_again, timeout=15, interval=0.01)
        assert False not in seen, seen  # the gap was shorter than the confirmation
        assert (await observer.owner_liveness())["w1"] is True
        assert (await observer.workers())[0].live is True
    finally:
        await admin.close()
        await observer.close()
        await owner.close()
