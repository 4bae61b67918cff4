"""The SQLite file deleted or replaced under a running server: 503, not a false 202.

SQLite keeps committing to the file it opened, even once no path names it:
without the check, enqueues were answered 202, ``/readyz`` stayed 200, and
after a restart those "accepted" tasks were gone.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from quart import Quart

from tests.web.conftest import reference_app


def delete(path: Path) -> None:
    path.unlink()


def rename(path: Path) -> None:
    path.rename(path.with_name("moved.sqlite3"))


def replace(path: Path) -> None:
    os.replace(path.with_name("other.sqlite3"), path)


def delete_wal(path: Path) -> None:
    Path(f"{path}-wal").unlink()


FAULTS: list[Callable[[Path], None]] = [delete, rename, replace, delete_wal]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
async def test_a_lost_database_file_answers_503_and_fails_readiness(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fault: Callable[[Path], None]
) -> None:
    db = tmp_path / "tasks.sqlite3"
    (tmp_path / "other.sqlite3").write_bytes(b"")
    app: Quart = reference_app(tmp_path, TASKS_WORKERS=False)
    async with app.test_app():
        client = app.test_client()
        body = {"name": "demo.echo", "args": [1]}
        assert (await client.post("/tasks", json=body)).status_code == 202
        assert (await client.get("/readyz")).status_code == 200
        fault(db)
        caplog.clear()
        ready = await client.get("/readyz")
        refused = await client.post("/tasks", json=body)
        again = await client.post("/tasks", json=body)
    assert ready.status_code == 503
    assert refused.status_code == 503
    assert again.status_code == 503
    message = (await refused.get_json())["error"]["message"]
    assert str(db) in message
    assert "while open" in message
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1
    assert str(db) in critical[0].getMessage()
