"""Fixtures for the reference app: an app on temporary files, served by Quart's test client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as QuartClient

from app import create_app


@pytest.fixture
def app_config(tmp_path: Path) -> dict[str, Any]:
    """Settings that keep every file of the app under ``tmp_path`` and every port free."""
    return {
        "TASKS_DATABASE_URL": f"sqlite:///{tmp_path / 'tasks.sqlite3'}",
        "TASKS_PROCESSES": 1,
        "TASKS_SHUTDOWN_TIMEOUT": 2,
        "APP_INSTANCE_PATH": str(tmp_path / "instance"),
        "APP_RECORD_WORK_SECONDS": 0.05,
        "APP_JOB_SECONDS": 0.6,
        "SIDE_SERVER_PORT": 0,
    }


@pytest.fixture
async def app(app_config: dict[str, Any]) -> AsyncIterator[Quart]:
    """The reference app, serving (lifespan started) for one test."""
    app = create_app(app_config)
    async with app.test_app():
        yield app


@pytest.fixture
def client(app: Quart) -> QuartClient:
    """A test client of the serving app."""
    return app.test_client()
