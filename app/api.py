"""Mounts the task HTTP API, dashboard, health and metrics on the reference app."""

from __future__ import annotations

from quart import Quart

from app.extensions import tasks
from tasks.web import TasksWeb


def register_api(app: Quart) -> None:
    """Serve the task API and dashboard under ``/tasks``, plus ``/metrics``,
    ``/healthz``, ``/readyz``, ``/openapi.json`` and ``/docs``."""
    TasksWeb(tasks, url_prefix="/tasks").init_app(app)
