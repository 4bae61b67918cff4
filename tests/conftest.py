"""Fixtures shared by every test suite.

``backend_url`` runs a test once per backend: a fresh SQLite file, then a
throwaway PostgreSQL schema (``?search_path=<schema>`` in the URL), created
before and dropped after the test. PostgreSQL variants skip with a reason
when the server does not answer, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from tasks.store.postgres import describe_url
from tests.servers import reap_leaks

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

# The reference app's minutely demo.report would add a task to any test that
# spans a minute boundary; tests that want it set APP_REPORT_SCHEDULE themselves.
os.environ.setdefault("APP_REPORT_SCHEDULE", "")

collect_ignore = ["testing_mode/project"]
"""A user's project with its own conftest; tests/testing_mode runs it as its own pytest."""


@pytest.fixture(scope="session", autouse=True)
def no_leaked_servers() -> Iterator[None]:
    """At session end, kill every server process a test left running and fail, naming it."""
    yield
    leaks = reap_leaks()
    if leaks:
        pytest.fail("server processes outlived their test (killed now):\n" + "\n".join(leaks))


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A fresh SQLite file for one test."""
    return f"sqlite:///{tmp_path / 'tasks.sqlite3'}"


def postgres_url() -> str:
    """The test server's URL: ``TASKS_TEST_POSTGRES_URL`` or the local default."""
    return os.environ.get("TASKS_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


@functools.cache
def _postgres_problem(url: str) -> str | None:
    """Why PostgreSQL at ``url`` cannot be used, or None; checked once per session."""

    async def check() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    # A thread with its own loop: callable from sync code and from inside a running loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            pool.submit(asyncio.run, check()).result()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
    return None


def postgres_url_or_skip() -> str:
    """The PostgreSQL test URL if the server answers; otherwise skip the test.

    With ``CI=true`` in the environment an unreachable server fails the test
    instead, so CI never passes by skipping every PostgreSQL test.
    """
    url = postgres_url()
    problem = _postgres_problem(url)
    if problem is not None:
        reason = f"PostgreSQL not reachable at {describe_url(url)}: {problem}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return url


def with_query(url: str, **params: str) -> str:
    """``url`` with query parameters added (or replaced)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
async def postgres_schema_url() -> AsyncIterator[str]:
    """A URL whose tables live in a fresh schema, dropped after the test."""
    base = postgres_url_or_skip()
    schema = f"tasks_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield with_query(base, search_path=schema)
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL of each backend (the test runs once per backend)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.sqlite3'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        await asyncio.sleep(interval)
