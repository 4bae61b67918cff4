"""The reference app (``asgi:app``) under real Hypercorn, for the slow web tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import Hypercorn, serving


@contextmanager
def hypercorn(
    tmp_path: Path,
    *args: str,
    workers: int = 1,
    env: dict[str, str] | None = None,
    ready_timeout: float = 60,
) -> Iterator[Hypercorn]:
    """Start the reference app; yield once ``/readyz`` answers 200; kill its group afterwards.

    The task store is a SQLite file in ``tmp_path`` unless ``env`` sets
    ``TASKS_DATABASE_URL`` (the tests pass ``backend_url`` there).
    """
    environ = {
        "TASKS_DATABASE_URL": f"sqlite:///{tmp_path / 'tasks.sqlite3'}",
        "APP_INSTANCE_PATH": str(tmp_path),
        "SIDE_SERVER_ENABLED": "false",
        **(env or {}),
    }
    server = Hypercorn(tmp_path, env=environ, args=args, workers=workers, ready_path="/readyz")
    with serving(server, timeout=ready_timeout):
        yield server
