"""Fixtures for the acceptance suite: real Hypercorn servers that are always killed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.server import Server
from tests.servers import TasksWorker

ServerFactory = Callable[..., Server]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """Build (not start) servers on ``tmp_path``; every one is killed at teardown."""
    servers: list[Server] = []

    def make(**options: Any) -> Server:
        server = Server(tmp_path, **options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.kill()


@pytest.fixture
def standalone_workers() -> Iterator[list[TasksWorker]]:
    """``python -m tasks worker`` processes a test starts; every one is killed at teardown."""
    started: list[TasksWorker] = []
    yield started
    for worker in started:
        worker.kill()
