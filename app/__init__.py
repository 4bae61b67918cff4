"""The reference Quart app: every Flask-era background-work scenario, done with quart-taskqueue."""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart

from app import demo  # noqa: F401  (registers the demo tasks)
from app.access import refuse_cross_site_requests
from app.api import register_api
from app.extensions import tasks
from app.scenarios import register_scenarios


def create_app(config: dict[str, Any] | None = None) -> Quart:
    """Build the app. ``TASKS_*`` settings come from ``config`` or the environment."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    app = Quart(__name__)
    app.config["TASKS_APP_IMPORT"] = "app:create_app"
    app.config.update(config or {})
    tasks.init_app(app)
    register_api(app)
    refuse_cross_site_requests(app)
    register_scenarios(app)
    return app
