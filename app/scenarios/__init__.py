"""The seed scenarios, one module each, registered on the reference app."""

from __future__ import annotations

from quart import Quart


def register_scenarios(app: Quart) -> None:
    """Register every scenario's blueprint and lifespan hooks."""
