"""Celery beat, ported: ``crontab`` and a ``beat_schedule`` dict run as schedules.

``celery.conf.beat_schedule = {...}`` takes the dict a ``celery beat`` setup
keeps in its config, unchanged: each entry's ``task`` (the task's name),
``schedule`` (seconds, a ``timedelta`` or a :class:`crontab`), ``args`` and
``kwargs``. Each entry becomes a schedule of the same name (see
:mod:`tasks.schedules`): it fires once per slot across every process, with
no separate beat process to run. Cron times are in ``celery.conf.timezone``
(default UTC), as Celery's ``timezone`` setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tasks.errors import ConfigurationError
from tasks.schedules import Schedule, interval_seconds

if TYPE_CHECKING:
    from tasks.extension import Tasks


@dataclass(frozen=True)
class crontab:  # noqa: N801 -- Celery's name, so that imports port unchanged
    """Celery's ``crontab(minute, hour, day_of_week, day_of_month, month_of_year)``."""

    minute: str | int = "*"
    hour: str | int = "*"
    day_of_week: str | int = "*"
    day_of_month: str | int = "*"
    month_of_year: str | int = "*"

    def __str__(self) -> str:
        fields = (self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week)
        return " ".join(str(field) for field in fields)


def beat_schedules(beat_schedule: Mapping[str, Mapping[str, Any]], tz: str) -> list[Schedule]:
    """The schedules of a Celery ``beat_schedule`` dict (see the module docstring)."""
    schedules = []
    for name, entry in beat_schedule.items():
        unknown = set(entry) - {"task", "schedule", "args", "kwargs", "options", "relative"}
        if unknown or "task" not in entry or "schedule" not in entry:
            raise ConfigurationError(
                f"beat_schedule entry {name!r} needs 'task' and 'schedule'"
                + (f"; unknown keys: {sorted(unknown)}" if unknown else "")
            )
        when = entry["schedule"]
        timing: dict[str, Any]
        if isinstance(when, crontab):
            timing = {"cron": str(when), "tz": tz}
        elif isinstance(when, timedelta | int | float):
            timing = {"every": interval_seconds(when)}
        else:
            raise ConfigurationError(
                f"beat_schedule entry {name!r}: schedule must be seconds, a timedelta or a"
                f" crontab, not {type(when).__name__}"
            )
        schedules.append(
            Schedule(
                name=name,
                task_name=entry["task"],
                args=tuple(entry.get("args", ())),
                kwargs=dict(entry.get("kwargs", {})),
                **timing,
            )
        )
    return schedules


def apply_beat_schedule(
    tasks: Tasks, beat_schedule: Mapping[str, Mapping[str, Any]], tz: str
) -> None:
    """Declare every entry of ``beat_schedule`` as a schedule of ``tasks``."""
    for schedule in beat_schedules(beat_schedule, tz):
        tasks.add_schedule(schedule)
