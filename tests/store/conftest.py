"""Fixtures for the store contract suite: every test runs against each backend.

The backends come from ``backend_url`` in ``tests/conftest.py``: PostgreSQL
tests get a schema of their own (``?search_path=<schema>`` in the URL), created
before and dropped after the test, so tests stay independent and never see
another suite's tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tasks.store import Store
from tasks.store.postgres import PostgresStore
from tasks.store.sqlite import SQLiteStore

StoreFactory = Callable[[], Awaitable[Store]]


@pytest.fixture
def store_url(backend_url: str) -> str:
    """A database URL of each backend, empty, for one test (see ``tests/conftest.py``)."""
    return backend_url


def make_store(url: str) -> Store:
    """An unopened store for ``url``."""
    if url.startswith("sqlite:"):
        return SQLiteStore(url)
    return PostgresStore(url, pool_size=4)


@pytest.fixture
async def store_factory(store_url: str) -> AsyncIterator[StoreFactory]:
    """Opens more stores on the same database (as other processes would); closes them after."""
    opened: list[Store] = []

    async def factory() -> Store:
        new = make_store(store_url)
        await new.open()
        opened.append(new)
        return new

    yield factory
    for each in reversed(opened):
        await each.close()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    """An open store on an empty database, closed after the test."""
    return await store_factory()
