"""An app whose own config names the task database (from ``CLI_TEST_DATABASE_URL``)."""

from __future__ import annotations

import os

from quart import Quart

from tasks import Tasks

tasks = Tasks()
app = Quart(__name__)
app.config["TASKS_DATABASE_URL"] = os.environ["CLI_TEST_DATABASE_URL"]
tasks.init_app(app)
