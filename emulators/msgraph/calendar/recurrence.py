"""Expanding Graph's `patternedRecurrence` into occurrence start times (pure).

Patterns: daily, weekly (daysOfWeek, firstDayOfWeek), absoluteMonthly (dayOfMonth),
relativeMonthly (daysOfWeek + index first..last), absoluteYearly; each with `interval`.
Ranges: endDate (inclusive, in the recurrence's time zone), numbered, noEnd. Wall-clock
times are kept across DST in the event's own time zone, as Outlook does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from dateutil import rrule

from emulators.msgraph.calendar.timezones import zone
from emulators.msgraph.errors import GraphError

_DAYS = {
    "monday": rrule.MO,
    "tuesday": rrule.TU,
    "wednesday": rrule.WE,
    "thursday": rrule.TH,
    "friday": rrule.FR,
    "saturday": rrule.SA,
    "sunday": rrule.SU,
}
_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_HARD_LIMIT = 2000  # occurrences considered per series (Outlook caps series too)


def validate(recurrence: dict[str, Any]) -> None:
    pattern = recurrence.get("pattern") or {}
    range_ = recurrence.get("range") or {}
    kind = pattern.get("type")
    if kind not in {"daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly"}:
        raise GraphError(400, "ErrorInvalidRequest", f"Unsupported recurrence pattern {kind!r}")
    if int(pattern.get("interval") or 0) < 1:
        raise GraphError(400, "ErrorInvalidRequest", "Recurrence interval must be at least 1")
    if kind in {"weekly", "relativeMonthly"} and not pattern.get("daysOfWeek"):
        raise GraphError(400, "ErrorInvalidRequest", "daysOfWeek is required for this pattern")
    if range_.get("type") not in {"endDate", "noEnd", "numbered"}:
        raise GraphError(400, "ErrorInvalidRequest", "Recurrence range type is invalid")
    if range_.get("type") == "numbered" and int(range_.get("numberOfOccurrences") or 0) < 1:
        raise GraphError(400, "ErrorInvalidRequest", "numberOfOccurrences must be at least 1")


def occurrences(
    recurrence: dict[str, Any],
    first_start_utc: datetime,
    tz_name: str,
    window_start: datetime,
    window_end: datetime,
) -> list[datetime]:
    """UTC starts of the occurrences whose start falls in [window_start, window_end)."""
    tz = zone(recurrence.get("range", {}).get("recurrenceTimeZone") or tz_name)
    local_first = first_start_utc.astimezone(tz)
    pattern = recurrence["pattern"]
    range_ = recurrence["range"]
    start_date = date.fromisoformat(range_.get("startDate") or local_first.date().isoformat())
    dtstart = datetime.combine(start_date, local_first.time().replace(tzinfo=None))
    kwargs: dict[str, Any] = {"interval": int(pattern.get("interval", 1)), "dtstart": dtstart}
    kind = pattern["type"]
    freq: Literal[0, 1, 2, 3, 4, 5, 6]
    days = [_DAYS[d.lower()] for d in pattern.get("daysOfWeek") or []]
    if kind == "daily":
        freq = rrule.DAILY
    elif kind == "weekly":
        freq = rrule.WEEKLY
        kwargs["byweekday"] = days
        kwargs["wkst"] = _DAYS[str(pattern.get("firstDayOfWeek") or "sunday").lower()]
    elif kind == "absoluteMonthly":
        freq = rrule.MONTHLY
        kwargs["bymonthday"] = int(pattern.get("dayOfMonth") or start_date.day)
    elif kind == "relativeMonthly":
        freq = rrule.MONTHLY
        index = _INDEX[str(pattern.get("index") or "first").lower()]
        kwargs["byweekday"] = [d(index) for d in days]
    else:
        freq = rrule.YEARLY
        kwargs["bymonth"] = int(pattern.get("month") or start_date.month)
        kwargs["bymonthday"] = int(pattern.get("dayOfMonth") or start_date.day)
    if range_["type"] == "numbered":
        kwargs["count"] = int(range_["numberOfOccurrences"])
    elif range_["type"] == "endDate":
        end = date.fromisoformat(range_["endDate"])
        kwargs["until"] = datetime.combine(end, time(23, 59, 59))
    rule = rrule.rrule(freq, **kwargs)
    out: list[datetime] = []
    for count, naive in enumerate(rule):
        if count >= _HARD_LIMIT:
            break
        moment = naive.replace(tzinfo=tz).astimezone(UTC)
        if moment >= window_end:
            break
        if moment >= window_start:
            out.append(moment)
    return out


def series_window_end(first_start: datetime) -> datetime:
    """How far ahead a series is expanded when no window is given (event list, instances)."""
    return first_start + timedelta(days=3 * 365)
