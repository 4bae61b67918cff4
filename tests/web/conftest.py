"""Fixtures for the HTTP API tests: the reference app on a fresh database of each backend.

The ``app`` fixture takes ``backend_url``, so every test that uses it runs
once on a fresh SQLite file and once on a throwaway PostgreSQL schema.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from app import create_app
from app.extensions import tasks


def reference_app(tmp_path: Path, database_url: str | None = None, **config: Any) -> Quart:
    """The reference app on ``database_url`` (default: a SQLite file in ``tmp_path``).

    It gets its own instance folder and no side server.
    """
    return create_app(
        {
            "TASKS_DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'tasks.sqlite3'}",
            "APP_INSTANCE_PATH": str(tmp_path),
            "SIDE_SERVER_ENABLED": False,
            **config,
        }
    )


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Extra config for the ``app`` fixture; override in a test module to change it."""
    return {}


@pytest.fixture
async def app(tmp_path: Path, backend_url: str, app_config: dict[str, Any]) -> AsyncIterator[Quart]:
    """The reference app on each backend, serving (lifespan started) for the test."""
    application = reference_app(tmp_path, backend_url, **app_config)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


async def stored_count() -> int:
    """How many tasks the store holds, in any state."""
    counts = await tasks.store.count_by_state()
    return sum(counts.values())


@pytest.fixture
def unchanged() -> Callable[[], Any]:
    """``async with unchanged():`` asserts the store holds as many tasks afterwards."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def check() -> AsyncIterator[None]:
        before = await stored_count()
        yield
        assert await stored_count() == before, "a rejected request changed the store"

    return check
