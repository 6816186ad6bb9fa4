"""The Outlook events the writer makes, as Graph JSON — the help page's "Calendar Event
Details" in code: subject "1:1 with [Team Member Name]", 30 or 60 minutes, the member
invited, a Teams link when asked, and a link to the meeting prep as the only body.

Every event carries SMVue's tag (a single-value extended property whose value is the
scheduling command's id) and a `transactionId` derived from that command id, so a retried
create returns the event already made instead of a second one.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tzlocal.windows_tz import tz_win as IANA_TO_WINDOWS

from shared.contracts.commands import MeetingType, RescheduleMeetingRequest, ScheduleMeetingRequest

# A fixed GUID names SMVue's property set; the value is the scheduling command's id.
SMVUE_TAG_ID = "String {6c1f6bb2-8a0e-4f55-9a39-4f1d2a7e5c11} Name SMVueManagedMeeting"
TAG_EXPAND = f"singleValueExtendedProperties($filter=id eq '{SMVUE_TAG_ID}')"
TEAMS_PROVIDER = "teamsForBusiness"
TEAMS_LOCATION = "Microsoft Teams Meeting"
_TRANSACTIONS = uuid.UUID("0b8f5f8e-3a57-4f5b-8f0a-6a4c2a9d7e21")


def transaction_id_for(command_id: str) -> str:
    """Stable per command: Graph dedupes creates that repeat a transactionId."""
    return str(uuid.uuid5(_TRANSACTIONS, command_id))


def subject_for(member_name: str) -> str:
    return f"1:1 with {member_name}"


def local_start(start: datetime, time_zone: str) -> datetime:
    """The start as wall-clock time in `time_zone`: a naive start is read in that zone,
    one with an offset is converted to it."""
    zone = ZoneInfo(time_zone)
    if start.tzinfo is None:
        return start.replace(tzinfo=zone)
    return start.astimezone(zone)


def graph_time(moment: datetime, time_zone: str) -> dict[str, str]:
    """Graph's dateTimeTimeZone: wall-clock time under the zone's Windows name (CLDR's
    mapping), which create and update accept for every zone — Graph takes only a short
    list of IANA names. A zone with no Windows name is sent as UTC (same instant)."""
    windows = IANA_TO_WINDOWS.get(time_zone)
    zone = ZoneInfo(time_zone) if windows is not None else UTC
    wall = moment.astimezone(zone).replace(tzinfo=None)
    return {"dateTime": wall.isoformat(timespec="seconds"), "timeZone": windows or "UTC"}


def prep_body(prep_url: str) -> dict[str, str]:
    link = html.escape(prep_url, quote=True)
    return {
        "contentType": "html",
        "content": f'<p>Prepare for this 1:1 in SMVue: <a href="{link}">{link}</a></p>',
    }


def new_event(request: ScheduleMeetingRequest, *, teams: bool | None = None) -> dict[str, Any]:
    """POST /me/events body. The manager is the organizer (their mailbox makes the event);
    the member is the one attendee Outlook invites. `teams` False: without the Teams link
    even if asked (the calendar can't have one)."""
    start = local_start(request.start, request.time_zone)
    end = start + timedelta(minutes=request.meeting_type.minutes)
    body: dict[str, Any] = {
        "subject": subject_for(request.member_name),
        "body": prep_body(str(request.prep_url)),
        "start": graph_time(start, request.time_zone),
        "end": graph_time(end, request.time_zone),
        "attendees": [
            {
                "emailAddress": {"address": request.member_email, "name": request.member_name},
                "type": "required",
            }
        ],
        "responseRequested": True,
        "transactionId": transaction_id_for(request.command_id),
        "singleValueExtendedProperties": [{"id": SMVUE_TAG_ID, "value": request.command_id}],
    }
    if request.add_teams_link if teams is None else teams:
        body["isOnlineMeeting"] = True
        body["onlineMeetingProvider"] = TEAMS_PROVIDER
        body["location"] = {"displayName": TEAMS_LOCATION}  # as Outlook labels one
    return body


def is_smvue_managed(event: dict[str, Any]) -> bool:
    """Does the event carry SMVue's tag (read with `$expand=TAG_EXPAND`)?"""
    properties = event.get("singleValueExtendedProperties")
    if not isinstance(properties, list):
        return False
    return any(
        isinstance(p, dict)
        and str(p.get("id", "")).lower() == SMVUE_TAG_ID.lower()
        and bool(p.get("value"))
        for p in properties
    )


@dataclass(frozen=True)
class CurrentTimes:
    """The event's times as Outlook has them now (UTC) and the zone it was made in."""

    start: datetime
    end: datetime
    time_zone: str
    all_day: bool = False  # the manager made it an all-day event in Outlook


class NothingToChange(ValueError):
    """A reschedule that names neither a new start nor a new meeting type."""


def reschedule_patch(
    current: CurrentTimes, request: RescheduleMeetingRequest
) -> tuple[datetime, datetime, dict[str, Any]]:
    """(new start UTC, new end UTC, PATCH body). A new start keeps the meeting type's
    duration (or the current duration); a new type alone keeps the start.

    A 1:1 has a time: the patch always says `isAllDay: false`, so an event the manager
    turned into an all-day one in Outlook becomes a timed one again (30 minutes unless a
    type is given) — Graph refuses an all-day event whose start and end aren't at midnight
    ("isAllDay", learn.microsoft.com/graph/api/resources/event)."""
    if request.new_start is None and request.meeting_type is None:
        raise NothingToChange("a reschedule needs a new start or a new meeting type")
    time_zone = request.time_zone or current.time_zone
    start = (
        local_start(request.new_start, time_zone).astimezone(UTC)
        if request.new_start is not None
        else current.start
    )
    if request.meeting_type is not None:
        duration = timedelta(minutes=request.meeting_type.minutes)
    elif current.all_day:
        duration = timedelta(minutes=MeetingType.SHORT.minutes)
    else:
        duration = current.end - current.start
    end = start + duration
    patch = {
        "start": graph_time(start, time_zone),
        "end": graph_time(end, time_zone),
        "isAllDay": False,
    }
    return start, end, patch
