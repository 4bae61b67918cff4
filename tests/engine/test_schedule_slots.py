"""Slots of cron and interval schedules, across daylight saving, and the missed-slot policies."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tasks.errors import ConfigurationError
from tasks.schedules import SKIP_GRACE, Schedule

BERLIN = ZoneInfo("Europe/Berlin")


def at(*parts: int, tz: ZoneInfo = BERLIN) -> float:
    return datetime(*parts, tzinfo=tz).timestamp()  # type: ignore[misc]


def local(slot: float) -> str:
    return datetime.fromtimestamp(slot, BERLIN).isoformat()


def cron(expr: str, **options: object) -> Schedule:
    return Schedule("s", "t", cron=expr, tz="Europe/Berlin", **options)  # type: ignore[arg-type]


def test_cron_slots_are_local_times() -> None:
    schedule = cron("0 9 * * MON-FRI")
    friday_noon = at(2026, 11, 27, 12, 0)
    assert local(schedule.next_after(friday_noon)) == "2026-11-30T09:00:00+01:00"
    assert local(schedule.latest_at_or_before(friday_noon)) == "2026-11-27T09:00:00+01:00"
    exactly = at(2026, 11, 27, 9, 0)
    assert schedule.latest_at_or_before(exactly) == exactly
    assert schedule.next_after(exactly) > exactly


def test_a_time_skipped_by_spring_forward_fires_once_at_the_next_existing_time() -> None:
    schedule = cron("30 2 * * *")  # 2026-03-29 02:30 does not exist in Berlin
    slots = schedule.newest_slots(at(2026, 3, 27, 12, 0), at(2026, 3, 30, 12, 0), 10)[::-1]
    assert [local(s) for s in slots] == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_a_repeated_hour_fires_at_both_occurrences_for_an_every_hour_expression() -> None:
    schedule = cron("0 * * * *")  # 2026-10-25 02:00 happens twice in Berlin
    start = at(2026, 10, 25, 0, 30)
    slots = schedule.newest_slots(start, start + 4 * 3600, 10)[::-1]
    assert [local(s) for s in slots] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    assert len(set(slots)) == len(slots)  # distinct instants: distinct keys


def test_interval_slots_are_whole_multiples_since_the_epoch() -> None:
    schedule = Schedule("s", "t", every=30)
    assert schedule.latest_at_or_before(1000.0) == 990.0
    assert schedule.next_after(990.0) == 1020.0
    assert schedule.newest_slots(900.0, 1000.0, 10) == [990.0, 960.0, 930.0]


@pytest.mark.parametrize(
    ("missed", "expected"),
    [("latest", [1000.0]), ("all", [800.0, 900.0, 1000.0]), ("skip", [])],
)
def test_missed_slot_policies(missed: str, expected: list[float]) -> None:
    schedule = Schedule("s", "t", every=100, missed=missed)  # type: ignore[arg-type]
    now = 1000.0 + SKIP_GRACE + 1  # the newest slot is no longer current
    assert schedule.due(700.0, now) == expected


def test_all_is_bounded_and_skip_fires_a_current_slot() -> None:
    bounded = Schedule("s", "t", every=1, missed="all", max_missed=5)
    assert bounded.due(0.0, 1000.0) == [996.0, 997.0, 998.0, 999.0, 1000.0]
    skip = Schedule("s", "t", every=30, missed="skip")
    assert skip.due(900.0, 991.0) == [990.0]
    assert skip.due(990.0, 1000.0) == []  # fired already


@pytest.mark.parametrize(
    "options",
    [
        {"cron": "not cron"},
        {"cron": "* * * * *", "every": 5},
        {},
        {"every": 0.5},
        {"cron": "* * * * *", "tz": "Mars/Olympus"},
        {"every": 5, "missed": "sometimes"},
    ],
)
def test_bad_schedules_are_refused_with_a_clear_error(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="schedule 's'"):
        Schedule("s", "t", **options)  # type: ignore[arg-type]
