"""Transactional enqueue through SQLAlchemy's asyncio API, on both backends.

An ORM write and the task commit together, or roll back together: the
session's own transaction carries both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from quart import Quart
from sqlalchemy import String, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tasks import State
from tests.engine import sample_app
from tests.engine.sample_app import tasks


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "orm_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(100))


def sqlalchemy_url(url: str) -> tuple[str, dict[str, object]]:
    """The SQLAlchemy URL (and connect arguments) for a task-database URL."""
    if url.startswith("sqlite:"):
        return url.replace("sqlite:", "sqlite+aiosqlite:", 1), {}
    base, _, query = url.partition("?")
    schema = query.partition("search_path=")[2]
    args = {"server_settings": {"search_path": schema}} if schema else {}
    return base.replace("postgresql:", "postgresql+asyncpg:", 1), args


@pytest.fixture
async def app(backend_url: str) -> AsyncIterator[Quart]:
    app = sample_app.create_app(backend_url)
    async with app.test_app():
        yield app


@pytest.fixture
async def engine(app: Quart, backend_url: str) -> AsyncIterator[AsyncEngine]:
    url, connect_args = sqlalchemy_url(backend_url)
    engine = create_async_engine(url, connect_args=connect_args)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield engine
    finally:
        await engine.dispose()


async def notes(engine: AsyncEngine) -> list[str]:
    async with AsyncSession(engine) as session:
        return list((await session.scalars(select(Note.body))).all())


async def test_a_committed_session_keeps_the_row_and_the_task(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add(Note(body="kept"))
        [handle] = await tasks.enqueue_in(session, sample_app.add.call(1, 2))
        await session.commit()
    assert await notes(engine) == ["kept"]
    record = await handle.wait(10)
    assert (record.state, record.result) == (State.SUCCEEDED, 3)


async def test_a_rolled_back_session_keeps_neither(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        session.add(Note(body="lost"))
        await session.flush()
        [handle] = await tasks.enqueue_in(session, sample_app.add.call(1, 2))
        await session.rollback()
    assert await notes(engine) == []
    assert await tasks.store.get(handle.id) is None


async def test_an_async_connection_works_too(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO orm_notes (body) VALUES ('raw')"))
        [handle] = await tasks.enqueue_in(conn, sample_app.add.call(2, 2))
        await conn.rollback()
    assert await tasks.store.get(handle.id) is None
    async with engine.connect() as conn:
        [handle] = await tasks.enqueue_in(conn, sample_app.add.call(2, 2))
        await conn.commit()
    assert await handle.result(10) == 4


async def test_enqueue_first_in_a_session_still_rolls_back(engine: AsyncEngine) -> None:
    # Nothing ran in the session before: on asyncpg, SQLAlchemy's transaction
    # had not reached the server yet, and the task used to be autocommitted.
    async with AsyncSession(engine) as session:
        [handle] = await tasks.enqueue_in(session, sample_app.add.call(1, 2))
        session.add(Note(body="lost"))
        await session.flush()
        await session.rollback()
    assert await notes(engine) == []
    assert await tasks.store.get(handle.id) is None
