"""A task store that cannot be opened or written: one clear line, a clear error, no half-writes.

Tests run as root, which ignores file permissions, so a read-only file is made
with the ext4 immutable flag (``chattr +i``): even root cannot open it for
writing. The flag is always removed again, or the tmp dir could not be deleted.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import ServerFactory
from tests.acceptance.server import insert_tasks, poll

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """Make files unwritable even for root for the duration; skip where unsupported."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not available to make a file read-only for root")
    done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def _startup_failure(server_output: str) -> str:
    lines = [line for line in server_output.splitlines() if line.strip()]
    assert "Traceback" not in server_output, server_output
    [line] = [line for line in lines if "task store unavailable" in line]
    return line


def test_missing_directory_fails_startup_with_one_clear_line(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir" / "tasks.sqlite3"
    server = make_server(env={"TASKS_DATABASE_URL": f"sqlite:///{missing}"})
    server.start(ready=False)
    server.wait_exit(60)
    line = _startup_failure(server.output())
    assert str(missing) in line
    assert "does not exist" in line
    assert not missing.parent.exists()


def test_read_only_database_file_fails_startup_with_one_clear_line(
    make_server: ServerFactory,
) -> None:
    server = make_server()
    insert_tasks(server.database_url, "demo.echo", [[1]])  # an existing, valid database
    with immutable(server.db_path):
        server.start(ready=False)
        server.wait_exit(60)
    line = _startup_failure(server.output())
    assert str(server.db_path) in line
    assert "readonly" in line
    assert "Operation not permitted" in line


def _post(base_url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{base_url}/tasks",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_enqueue_while_the_database_cannot_be_written_answers_503_and_writes_nothing(
    make_server: ServerFactory,
) -> None:
    """The write-ahead log is made immutable: every write fails with a disk I/O error."""
    server = make_server(env={"TASKS_CONCURRENCY": "1"})
    server.start()
    status, _ = _post(server.base_url, {"name": "demo.echo", "args": [1]})
    assert status == 202
    wal = Path(f"{server.db_path}-wal")
    poll(wal.exists, 10, "the write-ahead log")
    before = sum(server.states().values())

    with immutable(wal):
        status, body = _post(server.base_url, {"name": "demo.echo", "args": [2]})
        assert status == 503, body
        error = body["error"]
        assert isinstance(error, dict)
        assert str(server.db_path) in str(error["message"]) or error["code"]
        assert sum(server.states().values()) == before

    status, body = _post(server.base_url, {"name": "demo.echo", "args": [3]})
    assert status == 202, body  # the store recovers once the fault is gone
    assert sum(server.states().values()) == before + 1
