"""Whatever fails during startup, the server process exits by itself, promptly.

A supervisor can only restart a process that ends: a failed startup that
leaves a connection thread or a pool behind would keep Hypercorn's worker
alive, deaf to SIGTERM and Ctrl-C (the hang of the Flask era).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.acceptance.conftest import ServerFactory

pytestmark = pytest.mark.slow

EXIT_WITHIN = 30.0
"""Seconds a failed start may take to end the process (it takes about one)."""


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("workers", [0, 1])
def test_a_startup_hook_failing_after_the_task_system_started_ends_the_process(
    make_server: ServerFactory, taken_port: int, workers: int
) -> None:
    # The reference app's side server starts after the task system; its port is taken.
    server = make_server(
        workers=workers,
        env={"SIDE_SERVER_ENABLED": "true", "SIDE_SERVER_PORT": str(taken_port)},
    )
    server.start(ready=False)
    code = server.wait_exit(EXIT_WITHIN)
    output = server.output()
    assert "the side server cannot listen" in output
    assert "closing the task system" in output
    if workers == 0:  # the server is the worker: its status is the failure's
        assert code != 0
    server.wait_group_gone(EXIT_WITHIN)


def test_a_file_that_is_not_a_database_ends_the_process_with_one_line(
    make_server: ServerFactory,
) -> None:
    server = make_server(workers=0)
    server.db_path.write_bytes(b"this is not a database " * 100)
    server.start(ready=False)
    assert server.wait_exit(EXIT_WITHIN) != 0
    output = server.output()
    assert output.count("task store unavailable, cannot start") == 1
    assert "file is not a database" in output
    server.wait_group_gone(EXIT_WITHIN)
