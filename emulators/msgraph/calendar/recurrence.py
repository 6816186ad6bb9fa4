"""Expanding Graph's `patternedRecurrence` into occurrence start times (pure).

Patterns (recurrencePatternType): daily, weekly (daysOfWeek, firstDayOfWeek),
absoluteMonthly (dayOfMonth), relativeMonthly (daysOfWeek + index first..last),
absoluteYearly (month + dayOfMonth), relativeYearly (month + daysOfWeek + index); each with
`interval`. Ranges (recurrenceRangeType): endDate (inclusive, in the recurrence's time zone),
numbered, noEnd. Wall-clock times are kept across DST in the event's own time zone, as Outlook
does. `index` picks the nth of *all* the listed days in the month ("first weekend day" for
saturday+sunday), which is RRULE's BYSETPOS, not a per-day ordinal.

Docs: learn.microsoft.com/graph/api/resources/patternedrecurrence, .../recurrencepattern,
.../recurrencerange.
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
PATTERN_TYPES = frozenset(
    {"daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"}
)
RANGE_TYPES = frozenset({"endDate", "noEnd", "numbered"})
# Safety net against pathological series (interval 1, daily, noEnd, window of centuries).
_MAX_ITERATIONS = 200_000


def _bad(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRequest", message)


def validate(recurrence: dict[str, Any]) -> dict[str, Any]:
    """400 for what Graph refuses: unknown enum members, missing required members.

    Returns the recurrence as Graph stores and answers it: the day and index enum members
    read case-insensitively ("Thursday" is accepted), answered in the CSDL's lower case.
    """
    pattern = recurrence.get("pattern")
    range_ = recurrence.get("range")
    if not isinstance(pattern, dict) or not isinstance(range_, dict):
        raise _bad("A recurrence needs both 'pattern' and 'range'.")
    try:
        _check_members(pattern, range_)
    except (TypeError, ValueError) as exc:
        raise _bad("A recurrence member is missing or has an invalid value.") from exc
    canonical = dict(pattern)
    if "daysOfWeek" in pattern:
        canonical["daysOfWeek"] = [str(d).lower() for d in pattern.get("daysOfWeek") or []]
    for member in ("firstDayOfWeek", "index"):
        if pattern.get(member) is not None:
            canonical[member] = str(pattern[member]).lower()
    return {**recurrence, "pattern": canonical}


def _check_members(pattern: dict[str, Any], range_: dict[str, Any]) -> None:
    kind = pattern.get("type")
    if kind not in PATTERN_TYPES:
        raise _bad(f"Unsupported recurrence pattern type {kind!r}.")
    if int(pattern.get("interval") or 0) < 1:
        raise _bad("Recurrence interval must be at least 1.")
    days = pattern.get("daysOfWeek") or []
    if not isinstance(days, list) or any(str(d).lower() not in _DAYS for d in days):
        raise _bad("daysOfWeek contains an invalid day.")
    if kind in {"weekly", "relativeMonthly", "relativeYearly"} and not days:
        raise _bad(f"daysOfWeek is required for a {kind} pattern.")
    if str(pattern.get("firstDayOfWeek") or "sunday").lower() not in _DAYS:
        raise _bad("firstDayOfWeek is invalid.")
    if str(pattern.get("index") or "first").lower() not in _INDEX:
        raise _bad("index is invalid.")
    day_of_month, month = int(pattern.get("dayOfMonth") or 0), int(pattern.get("month") or 0)
    if kind in {"absoluteMonthly", "absoluteYearly"} and not 1 <= day_of_month <= 31:
        raise _bad(f"dayOfMonth is required for a {kind} pattern.")
    if kind in {"absoluteYearly", "relativeYearly"} and not 1 <= month <= 12:
        raise _bad(f"month is required for a {kind} pattern.")
    range_type = range_.get("type")
    if range_type not in RANGE_TYPES:
        raise _bad(f"Recurrence range type {range_type!r} is invalid.")
    date.fromisoformat(str(range_.get("startDate")))  # ValueError → 400 above
    if range_type == "endDate":
        date.fromisoformat(str(range_.get("endDate")))
    if range_type == "numbered" and int(range_.get("numberOfOccurrences") or 0) < 1:
        raise _bad("numberOfOccurrences must be at least 1.")


def _rule(recurrence: dict[str, Any], first_start_utc: datetime, tz_name: str) -> Any:
    tz = zone(recurrence.get("range", {}).get("recurrenceTimeZone") or tz_name)
    local_first = first_start_utc.astimezone(tz)
    pattern = recurrence["pattern"]
    range_ = recurrence["range"]
    start_date = date.fromisoformat(range_.get("startDate") or local_first.date().isoformat())
    dtstart = datetime.combine(start_date, local_first.time().replace(tzinfo=None))
    kwargs: dict[str, Any] = {"interval": int(pattern.get("interval", 1)), "dtstart": dtstart}
    kind = pattern["type"]
    freq: Literal[0, 1, 2, 3, 4, 5, 6]
    days = [_DAYS[str(d).lower()] for d in pattern.get("daysOfWeek") or []]
    index = _INDEX[str(pattern.get("index") or "first").lower()]
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
        kwargs["byweekday"] = days
        kwargs["bysetpos"] = index
    elif kind == "absoluteYearly":
        freq = rrule.YEARLY
        kwargs["bymonth"] = int(pattern.get("month") or start_date.month)
        kwargs["bymonthday"] = int(pattern.get("dayOfMonth") or start_date.day)
    else:  # relativeYearly
        freq = rrule.YEARLY
        kwargs["bymonth"] = int(pattern.get("month") or start_date.month)
        kwargs["byweekday"] = days
        kwargs["bysetpos"] = index
    if range_["type"] == "numbered":
        kwargs["count"] = int(range_["numberOfOccurrences"])
    elif range_["type"] == "endDate":
        end = date.fromisoformat(range_["endDate"])
        kwargs["until"] = datetime.combine(end, time(23, 59, 59))
    return rrule.rrule(freq, **kwargs), tz


def occurrences(
    recurrence: dict[str, Any],
    first_start_utc: datetime,
    tz_name: str,
    window_start: datetime,
    window_end: datetime,
) -> list[datetime]:
    """UTC starts of the occurrences whose start falls in [window_start, window_end)."""
    rule, tz = _rule(recurrence, first_start_utc, tz_name)
    out: list[datetime] = []
    for count, naive in enumerate(rule):
        if count >= _MAX_ITERATIONS:
            break
        moment = naive.replace(tzinfo=tz).astimezone(UTC)
        if moment >= window_end:
            break
        if moment >= window_start:
            out.append(moment)
    return out


def is_occurrence(
    recurrence: dict[str, Any], first_start_utc: datetime, tz_name: str, original: datetime
) -> bool:
    """Whether the series has an occurrence starting exactly at `original` (UTC)."""
    found = occurrences(
        recurrence, first_start_utc, tz_name, original, original + timedelta(seconds=1)
    )
    return bool(found) and found[0] == original


def series_window_end(first_start: datetime) -> datetime:
    """How far ahead a series is expanded when no window is given (cancelledOccurrences)."""
    return first_start + timedelta(days=3 * 365)
