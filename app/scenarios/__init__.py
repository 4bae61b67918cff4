"""The seed scenarios, one module each, registered on the reference app."""

from __future__ import annotations

from pathlib import Path

from quart import Quart

from app.db import init_db
from app.demo import schedule_report
from app.scenarios import (
    atomic_records,
    fire_and_forget,
    mail,
    progress_page,
    records,
    two_jobs,
    uploads,
)
from app.scenarios.settings import load_settings
from app.scenarios.side_server import init_side_server


def register_scenarios(app: Quart) -> None:
    """Read the app's settings, open its database, mount every scenario and the side server."""
    settings = load_settings(app)
    database = init_db(app, Path(settings.app_database_path))
    for module in (records, fire_and_forget, two_jobs, progress_page, mail, uploads):
        app.register_blueprint(module.blueprint)
    atomic_records.init_app(app)  # its table lives in the task database
    init_side_server(app, settings, database)
    schedule_report(settings.app_report_schedule)
