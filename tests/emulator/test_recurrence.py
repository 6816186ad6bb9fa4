"""Recurrence expansion per the patternedRecurrence docs (pure, no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emulators.msgraph.calendar.recurrence import is_occurrence, occurrences, validate
from emulators.msgraph.errors import GraphError

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


def test_relative_monthly_index_counts_across_all_listed_days() -> None:
    """recurrencePattern.index: "the instance of the allowed days specified in daysOfWeek",
    so first of saturday+sunday is the first weekend day, not both."""
    got = starts(
        {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["saturday", "sunday"]},
        {"type": "numbered", "startDate": "2030-06-01", "numberOfOccurrences": 3},
        datetime(2030, 6, 1, 9, tzinfo=UTC),
    )
    assert got == ["2030-06-01 09:00", "2030-07-06 09:00", "2030-08-03 09:00"]


def test_relative_monthly_every_other_month_until_an_end_date() -> None:
    got = starts(
        {"type": "relativeMonthly", "interval": 2, "daysOfWeek": ["monday"], "index": "third"},
        {"type": "endDate", "startDate": "2030-01-01", "endDate": "2030-06-30"},
        datetime(2030, 1, 1, 9, tzinfo=UTC),
    )
    assert got == ["2030-01-21 09:00", "2030-03-18 09:00", "2030-05-20 09:00"]


def test_yearly_patterns() -> None:
    absolute = starts(
        {"type": "absoluteYearly", "interval": 1, "month": 3, "dayOfMonth": 7},
        {"type": "noEnd", "startDate": "2029-03-07"},
        datetime(2029, 3, 7, 9, tzinfo=UTC),
    )
    relative = starts(
        {
            "type": "relativeYearly",
            "interval": 1,
            "month": 11,
            "daysOfWeek": ["thursday"],
            "index": "fourth",
        },
        {"type": "noEnd", "startDate": "2029-01-01"},
        datetime(2029, 1, 1, 18, tzinfo=UTC),
    )
    assert absolute == ["2030-03-07 09:00"]
    assert relative == ["2030-11-28 18:00"]  # Thanksgiving


def test_weekly_on_several_days_with_first_day_of_week() -> None:
    got = starts(
        {
            "type": "weekly",
            "interval": 2,
            "daysOfWeek": ["monday", "sunday"],
            "firstDayOfWeek": "monday",
        },
        {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 4},
        datetime(2030, 1, 7, 9, tzinfo=UTC),
    )
    # Weeks start on Monday: Mon 7 + Sun 13, then two weeks later Mon 21 + Sun 27.
    assert got == ["2030-01-07 09:00", "2030-01-13 09:00", "2030-01-21 09:00", "2030-01-27 09:00"]


def test_a_long_running_daily_series_still_reaches_a_far_window() -> None:
    recurrence = {
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "noEnd", "startDate": "2020-01-01"},
    }
    first = datetime(2020, 1, 1, 8, tzinfo=UTC)
    far = occurrences(
        recurrence, first, "UTC", datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 3, tzinfo=UTC)
    )
    assert far == [datetime(2030, 1, 1, 8, tzinfo=UTC), datetime(2030, 1, 2, 8, tzinfo=UTC)]
    assert is_occurrence(recurrence, first, "UTC", datetime(2035, 5, 5, 8, tzinfo=UTC))
    assert not is_occurrence(recurrence, first, "UTC", datetime(2035, 5, 5, 9, tzinfo=UTC))


def test_windows_time_zone_names_are_understood() -> None:
    got = starts(
        {"type": "weekly", "interval": 1, "daysOfWeek": ["friday"]},
        {"type": "numbered", "startDate": "2030-03-01", "numberOfOccurrences": 3},
        datetime(2030, 3, 1, 17, tzinfo=UTC),  # 09:00 in Seattle (PST)
        tz="Pacific Standard Time",
    )
    # The US moves to PDT on 2030-03-10: 09:00 local is then 16:00Z.
    assert got == ["2030-03-01 17:00", "2030-03-08 17:00", "2030-03-15 16:00"]


@pytest.mark.parametrize(
    "recurrence",
    [
        {"pattern": {"type": "hourly", "interval": 1}, "range": {"type": "noEnd"}},
        {"pattern": {"type": "weekly", "interval": 1}, "range": {"type": "noEnd"}},
        {
            "pattern": {"type": "daily", "interval": 0},
            "range": {"type": "noEnd", "startDate": "2030-01-01"},
        },
        {
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["funday"]},
            "range": {"type": "noEnd", "startDate": "2030-01-01"},
        },
        {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2030-01-01", "numberOfOccurrences": 0},
        },
        {"pattern": {"type": "daily", "interval": 1}, "range": {"type": "endDate"}},
        {"pattern": {"type": "daily", "interval": "x"}, "range": {"type": "noEnd"}},
        {"pattern": {"type": "daily", "interval": 1}, "range": {"type": "noEnd"}},  # no startDate
    ],
)
def test_invalid_recurrences_are_refused(recurrence: dict) -> None:
    with pytest.raises(GraphError) as refused:
        validate(recurrence)
    assert refused.value.status == 400


def test_day_names_are_read_in_any_case_and_answered_in_the_csdl_lower_case() -> None:
    """A client writing "Thursday" is served, and Graph answers the dayOfWeek member name."""
    canonical = validate(
        {
            "pattern": {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": ["Thursday"],
                "firstDayOfWeek": "Monday",
            },
            "range": {"type": "noEnd", "startDate": "2030-01-03"},
        }
    )
    assert canonical["pattern"]["daysOfWeek"] == ["thursday"]
    assert canonical["pattern"]["firstDayOfWeek"] == "monday"
