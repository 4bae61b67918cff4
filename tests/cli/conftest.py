"""Fixtures of the CLI tests: the real ``python -m tasks`` as a subprocess, seeded stores.

Each command runs against a real SQLite file and a real PostgreSQL schema
(``backend_url`` in tests/conftest.py); data is seeded with the store API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tasks.store import Store
from tests.servers import ROOT
from tests.store.conftest import make_store

CLI_TIMEOUT = 60.0


@dataclass(frozen=True)
class Ran:
    """What one run of the CLI did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)


def run_cli(*args: str, url: str | None = None, stdin: str = "", module: str = "tasks") -> Ran:
    """Run ``python -m <module> ARGS`` with ``TASKS_DATABASE_URL=url`` (if given) and no other
    ``TASKS_*`` setting; bounded by :data:`CLI_TIMEOUT`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKS_")}
    if url is not None:
        env["TASKS_DATABASE_URL"] = url
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


@pytest.fixture
async def seeded(backend_url: str) -> AsyncIterator[Store]:
    """An open store on an empty database of each backend, for seeding and checking."""
    store = make_store(backend_url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
