"""The reference app's own settings: app config first, then the environment, then defaults."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from quart import Quart

from tasks import ConfigurationError
from tasks.config import parse_bool


@dataclass(frozen=True, slots=True)
class AppSettings:
    """Everything a deployer may change about the scenarios (key: the field name upper-cased)."""

    app_instance_path: str = ""
    """Instance folder for the databases and uploads (default: Quart's ``instance/``)."""
    app_database_path: str = ""
    """The app's own SQLite file (default: ``app.sqlite3`` in the instance folder)."""
    app_record_work_seconds: float = 2.0
    """Simulated work before a record is written (scenario 1)."""
    app_job_seconds: float = 2.0
    """How long the first of the two jobs runs; the second runs half as long (scenario 3)."""
    app_mail_sender: str = "Quart Taskqueue <welcome@example.com>"
    """``From`` of the welcome mail (scenario 5)."""
    app_report_schedule: str = "* * * * *"
    """Cron expression of the periodic ``demo.report`` task (empty: not scheduled)."""
    side_server_enabled: bool = True
    """Start the TCP file-receiving side server (scenario 6)."""
    side_server_host: str = "127.0.0.1"
    """Address the side server listens on."""
    side_server_port: int = 9009
    """Port of the side server; 0 picks a free port and logs it."""
    side_server_max_bytes: int = 100 * 1024 * 1024
    """Largest file the side server accepts."""
    side_server_max_connections: int = 64
    """Uploads the side server receives at once; the next client is refused with ``ERR busy``."""
    side_server_upload_seconds: float = 300.0
    """Longest time one upload may take, from connect to the last byte."""

    @classmethod
    def load(cls, config: Mapping[str, Any], environ: Mapping[str, str]) -> AppSettings:
        """Resolve each field from ``config``, then ``environ``; raise ConfigurationError."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            name, key = field.name, field.name.upper()
            default: Any = field.default
            raw = config.get(key)
            if raw is None:
                raw = environ.get(key)
            if raw is None:
                continue
            parse: Callable[[str], Any] = parse_bool if isinstance(default, bool) else type(default)
            try:
                values[name] = parse(raw) if isinstance(raw, str) else type(default)(raw)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"invalid {key}={raw!r}: {exc}") from exc
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ConfigurationError for values that cannot work."""
        if not 0 <= self.side_server_port <= 65535:
            raise ConfigurationError("SIDE_SERVER_PORT must be between 0 and 65535")
        if self.side_server_max_bytes < 1:
            raise ConfigurationError("SIDE_SERVER_MAX_BYTES must be positive")
        if self.side_server_max_connections < 1:
            raise ConfigurationError("SIDE_SERVER_MAX_CONNECTIONS must be positive")
        if self.side_server_upload_seconds <= 0:
            raise ConfigurationError("SIDE_SERVER_UPLOAD_SECONDS must be positive")
        for name in ("app_record_work_seconds", "app_job_seconds"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{name.upper()} must not be negative")


def load_settings(app: Quart) -> AppSettings:
    """Read the settings, store them back into ``app.config`` and set the instance folder."""
    settings = AppSettings.load(app.config, os.environ)
    if settings.app_instance_path:
        app.instance_path = str(Path(settings.app_instance_path).resolve())
    instance = Path(app.instance_path)
    settings = replace(
        settings,
        app_instance_path=str(instance),
        app_database_path=str(
            Path(settings.app_database_path).resolve()
            if settings.app_database_path
            else instance / "app.sqlite3"
        ),
    )
    for field in fields(settings):
        app.config[field.name.upper()] = getattr(settings, field.name)
    return settings
