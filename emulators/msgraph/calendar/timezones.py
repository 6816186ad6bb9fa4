"""Graph's `dateTimeTimeZone`: Windows or IANA zone names, UTC unless asked otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz as CLDR_WINDOWS_TO_IANA

from emulators.msgraph.errors import GraphError

# Every Windows zone name (CLDR's mapping, as Outlook knows them); IANA names are accepted
# as they are.
WINDOWS_TO_IANA = {
    **CLDR_WINDOWS_TO_IANA,
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "Pacific Standard Time": "America/Los_Angeles",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
}


def zone(name: str | None) -> ZoneInfo:
    name = name or "UTC"
    try:
        return ZoneInfo(WINDOWS_TO_IANA.get(name, name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified: {name}",
        ) from exc


def parse_date_time_time_zone(value: object, field: str) -> tuple[datetime, str]:
    """`{"dateTime": "...", "timeZone": "..."}` → (aware UTC datetime, the zone name given)."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise GraphError(400, "ErrorInvalidRequest", f"'{field}' must be a dateTimeTimeZone")
    tz_name = str(value.get("timeZone") or "UTC")
    try:
        local = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidRequest", f"Invalid dateTime in '{field}'") from exc
    if local.tzinfo is None:
        local = local.replace(tzinfo=zone(tz_name))
    return local.astimezone(UTC), tz_name


def format_in(moment: datetime, tz_name: str | None) -> dict[str, str]:
    """Graph's output form: local wall time with 7 fractional digits, plus the zone name."""
    name = tz_name or "UTC"
    local = moment.astimezone(zone(name)).replace(tzinfo=None)
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.") + "0000000", "timeZone": name}


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_query_time(value: str, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise GraphError(400, "ErrorInvalidParameter", f"Invalid {field}: {value}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
