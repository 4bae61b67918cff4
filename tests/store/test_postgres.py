"""PostgreSQL only: open errors, unstorable text, concurrent migrations, notifications,
transactional insert, lost connections and outages."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tasks.errors import StoreUnavailableError
from tasks.model import ErrorInfo, Finish, Progress, State
from tasks.store import Inserted
from tasks.store.migrations import load_migrations
from tasks.store.postgres import PostgresStore
from tests.conftest import eventually, postgres_url_or_skip, with_query
from tests.store.contract import (
    LEASE,
    OWNER,
    add,
    claim_one,
    must_get,
    new_task,
)


async def test_postgres_open_error_names_server_not_password() -> None:
    store = PostgresStore("postgresql://alice:s3cr%3Dt@127.0.0.1:1/somedb", pool_size=1)
    with pytest.raises(StoreUnavailableError) as caught:
        await store.open()
    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "somedb" in message
    assert "s3cr" not in message
    assert "s3cr" not in repr(store)


async def test_postgres_stores_unstorable_messages_cleaned(postgres_schema_url: str) -> None:
    """PostgreSQL text holds no NUL and no lone surrogate: such messages are cleaned,
    not allowed to fail the batch (and every other write in it)."""
    store = PostgresStore(postgres_schema_url, pool_size=2)
    await store.open()
    try:
        task_id = (await add(store))[0]
        await claim_one(store)
        await store.set_progress(task_id, OWNER, Progress(1, 2, "nul\x00 here"))
        assert (
            await must_get(store, task_id)
        ).progress.message == "nul\N{REPLACEMENT CHARACTER} here"
        error = ErrorInfo("OSError", "no file b'\udcff'\x00", "tb \udcff")
        assert await store.finish([Finish(task_id, OWNER, State.FAILED, error=error)]) == [True]
        stored = (await must_get(store, task_id)).error
        assert stored == ErrorInfo(
            "OSError", "no file b'\\udcff'\N{REPLACEMENT CHARACTER}", "tb \\udcff"
        )
        with pytest.raises(ValueError, match="NUL"):
            await store.insert([new_task(name="bad\x00name")])
    finally:
        await store.close()


async def test_postgres_concurrent_starters_migrate_once(postgres_schema_url: str) -> None:
    stores = [PostgresStore(postgres_schema_url, pool_size=1) for _ in range(6)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        conn = await asyncpg.connect(postgres_schema_url)
        try:
            rows = await conn.fetch("SELECT version, name FROM tasks_schema_migrations")
        finally:
            await conn.close()
        shipped = [(m.version, m.name) for m in load_migrations("postgres")]
        assert shipped[:4] == [
            (1, "0001_initial.sql"),
            (2, "0002_cancelling.sql"),
            (3, "0003_schedules.sql"),
            (4, "0004_retry_control.sql"),
        ]
        assert sorted((r["version"], r["name"]) for r in rows) == shipped  # each once
        await add(stores[0])
        assert await stores[-1].count_queued() == 1
    finally:
        for s in stores:
            await s.close()


async def test_postgres_new_work_from_another_instance(postgres_schema_url: str) -> None:
    listener = PostgresStore(postgres_schema_url, pool_size=2)
    writer = PostgresStore(postgres_schema_url, pool_size=2)
    await listener.open()
    await writer.open()
    try:
        woke = asyncio.Event()
        listener.on_new_work(woke.set)

        async def listening() -> bool:
            return listener.listening

        await eventually(listening, timeout=10, interval=0.005)
        assert not woke.is_set()
        await writer.insert([new_task()])
        await asyncio.wait_for(woke.wait(), timeout=10)

        # a retry of a failed task is new work too
        task_id = (await claim_one(writer)).id
        failure = Finish(task_id, OWNER, State.FAILED, error=ErrorInfo("E", "m"))
        assert await writer.finish([failure]) == [True]
        woke.clear()
        retried = await writer.retry(task_id)
        assert retried is not None
        assert retried.state is State.QUEUED
        await asyncio.wait_for(woke.wait(), timeout=10)
    finally:
        await writer.close()
        await listener.close()


async def test_postgres_insert_in_callers_transaction(postgres_schema_url: str) -> None:
    store = PostgresStore(postgres_schema_url, pool_size=2)
    await store.open()
    conn = await asyncpg.connect(postgres_schema_url)
    try:
        woke = asyncio.Event()
        store.on_new_work(woke.set)

        async def listening() -> bool:
            return store.listening

        await eventually(listening, timeout=10, interval=0.005)

        rolled_back = new_task()
        transaction = conn.transaction()
        await transaction.start()
        assert await store.insert_in(conn, [rolled_back]) == [Inserted(rolled_back.id, True)]
        await transaction.rollback()
        assert await store.get(rolled_back.id) is None

        committed, keyed = new_task(), new_task(key="tx-key")
        async with conn.transaction():
            result = await store.insert_in(conn, [committed, keyed])
            assert result == [Inserted(committed.id, True), Inserted(keyed.id, True)]
        assert (await must_get(store, committed.id)).state is State.QUEUED
        await asyncio.wait_for(woke.wait(), timeout=10)  # notified on commit

        duplicate = new_task(key="tx-key")
        assert await store.insert_in(conn, [duplicate]) == [Inserted(keyed.id, False)]
        assert await store.count_queued() == 2
    finally:
        await conn.close()
        await store.close()


async def _terminate(admin: asyncpg.Connection, application_name: str, listen: bool) -> int:
    pids = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1"
        " AND pid <> pg_backend_pid() AND (query LIKE 'LISTEN%') = $2",
        application_name,
        listen,
    )
    for row in pids:
        await admin.execute("SELECT pg_terminate_backend($1)", row["pid"])
    return len(pids)


async def test_postgres_survives_lost_connections(postgres_schema_url: str) -> None:
    app_name = f"tasks-test-{uuid.uuid4().hex[:8]}"
    url = with_query(postgres_schema_url, application_name=app_name)
    store = PostgresStore(url, pool_size=3)
    await store.open()
    admin = await asyncpg.connect(postgres_schema_url)
    try:
        woke = asyncio.Event()
        store.on_new_work(woke.set)

        async def listening() -> bool:
            return store.listening

        await eventually(listening, timeout=10, interval=0.005)
        accepted = set(await add(store, 3))

        # Pool connections die: a write either fails loudly or is committed.
        assert await _terminate(admin, app_name, listen=False) >= 1

        async def write_works() -> bool:
            try:
                accepted.update(await add(store))
            except StoreUnavailableError:
                return False
            return True

        await eventually(write_works, timeout=10, interval=0.01)
        assert len(await store.get_many(sorted(accepted))) == len(accepted)

        # The listening connection dies: it comes back and wakes everyone once.
        woke.clear()
        assert await _terminate(admin, app_name, listen=True) == 1

        async def relistening() -> bool:
            return woke.is_set() and store.listening

        await eventually(relistening, timeout=15, interval=0.01)
        woke.clear()
        other = PostgresStore(postgres_schema_url, pool_size=1)
        await other.open()
        try:
            await add(other)
        finally:
            await other.close()
        await asyncio.wait_for(woke.wait(), timeout=10)
    finally:
        await admin.close()
        await store.close()


class TcpProxy:
    """Forwards a local port to the PostgreSQL server; ``stop`` is an outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
            self._writers.discard(writer)


async def test_postgres_outage_fails_writes_loudly_then_recovers(
    postgres_schema_url: str,
) -> None:
    parts = urlsplit(postgres_schema_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    url = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}"))
    store = PostgresStore(url, pool_size=2, connect_timeout=2)
    await store.open()
    try:
        woke = asyncio.Event()
        store.on_new_work(woke.set)

        async def listening() -> bool:
            return store.listening

        async def not_listening() -> bool:
            return not store.listening

        await eventually(listening, timeout=10, interval=0.005)
        before = set(await add(store, 2))

        await proxy.stop()  # the server is gone
        lost = new_task()
        with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{proxy.port}"):
            await store.insert([lost])
        with pytest.raises(StoreUnavailableError):
            await store.claim(OWNER, ["default"], 1, LEASE)
        with pytest.raises(StoreUnavailableError):
            await store.get(lost.id)
        await eventually(not_listening, timeout=10, interval=0.005)

        await proxy.start()  # the server is back, same address
        woke.clear()
        after: set[str] = set()

        async def write_works() -> bool:
            try:
                after.update(await add(store))
            except StoreUnavailableError:
                return False
            return True

        await eventually(write_works, timeout=10, interval=0.01)
        assert {r.id for r in await store.get_many([*before, *after, lost.id])} == before | after
        await eventually(listening, timeout=20, interval=0.01)
        await asyncio.wait_for(woke.wait(), timeout=10)  # woken once after reconnecting
    finally:
        await store.close()
        await proxy.stop()


def test_postgres_url_or_skip_skips_or_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKS_TEST_POSTGRES_URL", "postgresql://bob:pw@127.0.0.1:1/nothere")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=r"not reachable at .*127\.0\.0\.1:1\b"
    ) as skipped:
        postgres_url_or_skip()
    assert "pw" not in str(skipped.value)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"not reachable at .*127\.0\.0\.1:1\b"):
        postgres_url_or_skip()
