"""Recurrence expansion per the patternedRecurrence docs (pure, no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emulators.msgraph.calendar.recurrence import occurrences

WINDOW = (datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))


def starts(pattern: dict, range_: dict, first: datetime, tz: str = "UTC") -> list[str]:
    recurrence = {"pattern": pattern, "range": range_}
    return [d.strftime("%Y-%m-%d %H:%M") for d in occurrences(recurrence, first, tz, *WINDOW)]


def test_weekly_every_other_week_with_count() -> None:
    got = starts(
        {"type": "weekly", "interval": 2, "daysOfWeek": ["monday"], "firstDayOfWeek": "monday"},
        {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 3},
        datetime(2030, 1, 7, 9, tzinfo=UTC),
    )
    assert got == ["2030-01-07 09:00", "2030-01-21 09:00", "2030-02-04 09:00"]


def test_weekly_until_an_end_date_keeps_local_time_across_dst() -> None:
    got = starts(
        {"type": "weekly", "interval": 1, "daysOfWeek": ["thursday"]},
        {"type": "endDate", "startDate": "2030-03-21", "endDate": "2030-04-04"},
        datetime(2030, 3, 21, 9, tzinfo=UTC),  # 10:00 in Paris (CET)
        tz="Europe/Paris",
    )
    # Paris moves to CEST on 2030-03-31: 10:00 local is then 08:00 UTC.
    assert got == ["2030-03-21 09:00", "2030-03-28 09:00", "2030-04-04 08:00"]


def test_daily_every_third_day() -> None:
    got = starts(
        {"type": "daily", "interval": 3},
        {"type": "numbered", "startDate": "2030-01-01", "numberOfOccurrences": 3},
        datetime(2030, 1, 1, 12, tzinfo=UTC),
    )
    assert got == ["2030-01-01 12:00", "2030-01-04 12:00", "2030-01-07 12:00"]


def test_absolute_monthly() -> None:
    got = starts(
        {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
        {"type": "numbered", "startDate": "2030-01-15", "numberOfOccurrences": 3},
        datetime(2030, 1, 15, 9, tzinfo=UTC),
    )
    assert got == ["2030-01-15 09:00", "2030-02-15 09:00", "2030-03-15 09:00"]


@pytest.mark.parametrize(
    ("index", "day", "expected"),
    [
        ("second", "tuesday", ["2030-01-08 09:00", "2030-02-12 09:00"]),
        ("last", "friday", ["2030-01-25 09:00", "2030-02-22 09:00"]),
    ],
)
def test_relative_monthly(index: str, day: str, expected: list[str]) -> None:
    got = starts(
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": [day], "index": index},
        {"type": "numbered", "startDate": "2030-01-01", "numberOfOccurrences": 2},
        datetime(2030, 1, 1, 9, tzinfo=UTC),
    )
    assert got == expected
