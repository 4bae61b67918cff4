"""Mounts the task HTTP API, dashboard, health and metrics on the reference app."""

from __future__ import annotations

from quart import Quart


def register_api(app: Quart) -> None:
    """Mount the task API under ``/tasks`` (filled in by the HTTP API work)."""
