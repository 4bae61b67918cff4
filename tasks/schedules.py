"""Periodic tasks: schedules, their slots, and firing each due slot exactly once.

A schedule names a registered task, its arguments, and when it is due: a cron
expression in a time zone (parsed by ``cronsim``; 5 fields, or 6 with
seconds first) or a plain interval (``every``, slots at whole multiples of it
since the Unix epoch, so every process computes the same ones). A *slot* is
one due time, a Unix timestamp.

Exactly one task per slot, with no leader: every process with workers runs
:func:`run_schedules`, and a slot's task is inserted with the idempotency key
``schedule:<name>:<slot>``, which the store keeps unique; whoever comes
second finds the first one's task. The store also keeps, per schedule, the
latest slot fired (moved forward in the transaction that inserts the slot's
task) and whether it is paused, so a slot is never fired twice, even once its
task was purged, and a pause holds across restarts and processes.

Missed slots (every process was down across them) follow the schedule's
policy when a process is back: ``latest`` (default) fires the newest one only,
``all`` fires each (at most ``max_missed``, the newest), ``skip`` fires none
but a slot that is still current (due less than :data:`SKIP_GRACE` s ago).
A schedule seen for the first time starts with the slots after that moment.

Cron in a time zone follows ``cronsim``'s (and cron's) rules for daylight
saving: a time skipped when clocks go forward fires once at the first time
that exists after it; a time repeated when they go back fires at each of its
occurrences for expressions that name every hour (``*/30 * * * *``), once
otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from tasks.errors import ConfigurationError

MissedPolicy = Literal["latest", "all", "skip"]
SKIP_GRACE = 30.0
"""Seconds after its time a slot still counts as current under the ``skip`` policy."""
MAX_MISSED = 100
"""Default bound on the slots the ``all`` policy fires after a downtime."""


@dataclass(frozen=True)
class Schedule:
    """When a task is due; see the module docstring. Made by :meth:`Tasks.periodic`."""

    name: str
    task_name: str
    cron: str | None = None
    every: float | None = None
    """Seconds between slots (for ``every=timedelta(...)``)."""
    tz: str = "UTC"
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    missed: MissedPolicy = "latest"
    max_missed: int = MAX_MISSED

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ConfigurationError(f"schedule {self.name!r}: give either cron or every")
        if self.every is not None and not (math.isfinite(self.every) and self.every >= 1):
            raise ConfigurationError(f"schedule {self.name!r}: every must be at least 1 second")
        if self.missed not in ("latest", "all", "skip"):
            raise ConfigurationError(f"schedule {self.name!r}: missed must be latest, all or skip")
        if self.max_missed < 1:
            raise ConfigurationError(f"schedule {self.name!r}: max_missed must be at least 1")
        try:
            zone = ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigurationError(
                f"schedule {self.name!r}: unknown time zone {self.tz!r}"
            ) from exc
        if self.cron is not None:
            try:
                CronSim(self.cron, datetime.now(zone))
            except CronSimError as exc:
                raise ConfigurationError(
                    f"schedule {self.name!r}: bad cron expression {self.cron!r}: {exc}"
                ) from None

    @property
    def key_prefix(self) -> str:
        """The idempotency keys of this schedule's tasks start with this."""
        return f"schedule:{self.name}:"

    def key(self, slot: float) -> str:
        """The idempotency key of the task of ``slot``."""
        return f"{self.key_prefix}{slot:.0f}"

    def next_after(self, moment: float) -> float:
        """The first slot strictly after ``moment``."""
        if self.every is not None:
            return (math.floor(moment / self.every) + 1) * self.every
        return next(self._cron(moment, reverse=False))

    def latest_at_or_before(self, moment: float) -> float:
        """The last slot at or before ``moment``."""
        if self.every is not None:
            return math.floor(moment / self.every) * self.every
        # cronsim's reverse iteration is strict and works in whole seconds.
        return next(self._cron(math.floor(moment) + 1, reverse=True))

    def newest_slots(self, after: float, until: float, limit: int) -> list[float]:
        """Up to ``limit`` slots in ``(after, until]``, newest first."""
        found: list[float] = []
        slot = self.latest_at_or_before(until)
        while slot > after and len(found) < limit:
            found.append(slot)
            slot = self.latest_at_or_before(slot - 1e-6 if self.every else slot - 1)
        return found

    def due(self, last_fired: float, now: float) -> list[float]:
        """The slots to fire now, oldest first, given the latest slot already fired."""
        limit = self.max_missed if self.missed == "all" else 1
        newest = self.newest_slots(last_fired, now, limit)
        if not newest:
            return []
        if self.missed == "skip" and now - newest[0] > SKIP_GRACE:
            return []
        return newest[::-1]

    def _cron(self, moment: float, *, reverse: bool) -> Iterator[float]:
        assert self.cron is not None
        start = datetime.fromtimestamp(moment, ZoneInfo(self.tz))
        for when in CronSim(self.cron, start, reverse=reverse):
            yield when.timestamp()


def interval_seconds(every: timedelta | float) -> float:
    """``every`` as seconds (a ``timedelta`` or a number)."""
    return every.total_seconds() if isinstance(every, timedelta) else float(every)


def iso(slot: float | None) -> str | None:
    """A slot as ISO 8601 UTC text (for the API)."""
    if slot is None:
        return None
    return datetime.fromtimestamp(slot, UTC).isoformat().replace("+00:00", "Z")
