"""Rendering an instance as Graph's event JSON: the CSDL's property names and casing."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from emulators.msgraph.calendar.model import STAMP
from emulators.msgraph.calendar.store import Instance
from emulators.msgraph.calendar.timezones import format_in, iso_utc
from emulators.msgraph.directory import Directory

_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")
_DEFAULT_LOCATION: dict[str, Any] = {
    "displayName": "",
    "locationType": "default",
    "uniqueIdType": "unknown",
    "address": {},
    "coordinates": {},
}


def body_preview(content: str, content_type: str) -> str:
    """Graph's bodyPreview: the first 255 characters of the body as plain text."""
    text = content
    if content_type == "html":
        text = html.unescape(_TAGS.sub(" ", content))
    return _SPACE.sub(" ", text).strip()[:255]


def _location(value: Any) -> dict[str, Any]:
    """A location as Graph echoes it: defaults filled in, a named place gets a private id."""
    if not isinstance(value, dict):
        return dict(_DEFAULT_LOCATION)
    if not value.get("displayName"):
        return {**_DEFAULT_LOCATION, **value}
    name = str(value["displayName"])
    named = {"locationType": "default", "uniqueId": name, "uniqueIdType": "private"}
    return {"displayName": name, **named, **value}


def _same(value: str) -> str:
    return value


def _day_of(stamp: str) -> str:
    return datetime.strptime(stamp, STAMP).replace(tzinfo=UTC).date().isoformat()


def cancelled_occurrences(item: Instance, id_of: Callable[[str], str] = _same) -> list[str]:
    """A series master's cancelledOccurrences: "OID.{masterId}.{yyyy-mm-dd}" per cancelled one."""
    event = item.event
    return [
        f"OID.{id_of(event.id)}.{_day_of(stamp)}"
        for stamp, override in sorted(event.exceptions.items())
        if override.cancelled
    ]


def render(
    item: Instance,
    directory: Directory,
    *,
    base_url: str,
    time_zone: str | None = None,
    select: set[str] | None = None,
    expand_property_ids: set[str] | None = None,
    id_of: Callable[[str], str] = _same,
) -> dict[str, Any]:
    """`id_of` maps a stored (immutable) id to the form the request asked for."""
    event = item.event
    data = dict(event.data)
    if item.override is not None:
        data.update(item.override.fields)
    owner = directory.users.get(event.owner)
    organizer_user = (
        directory.users.get(event.organizer_event[0]) if event.organizer_event else owner
    )
    organizer = {
        "emailAddress": {
            "name": organizer_user.display_name if organizer_user else "",
            "address": organizer_user.mail if organizer_user else "",
        }
    }
    body = data.get("body") or {"contentType": "text", "content": ""}
    content = str(body.get("content") or "")
    content_type = str(body.get("contentType") or "text").lower()
    location = _location(data.get("location"))
    online = data.get("onlineMeeting")
    out: dict[str, Any] = {
        "@odata.etag": f'W/"{item.change_key}"',
        "id": id_of(item.id),
        "createdDateTime": iso_utc(event.created),
        "lastModifiedDateTime": iso_utc(item.modified),
        "changeKey": item.change_key,
        "categories": data.get("categories") or [],
        "originalStartTimeZone": data.get("originalStartTimeZone") or event.start_tz,
        "originalEndTimeZone": data.get("originalEndTimeZone") or event.end_tz,
        "iCalUId": event.ical_uid,
        "reminderMinutesBeforeStart": data.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": data.get("isReminderOn", True),
        "hasAttachments": False,
        "subject": data.get("subject", ""),
        "bodyPreview": body_preview(content, content_type),
        "importance": data.get("importance", "normal"),
        "sensitivity": data.get("sensitivity", "normal"),
        "isAllDay": bool(data.get("isAllDay", False)),
        "isCancelled": bool(data.get("isCancelled", False)),
        "isOrganizer": event.is_organizer,
        "responseRequested": data.get("responseRequested", True),
        "seriesMasterId": id_of(event.id) if item.kind in ("occurrence", "exception") else None,
        "showAs": data.get("showAs", "busy"),
        "type": item.kind,
        "webLink": f"https://outlook.office365.com/owa/?itemid={id_of(item.id)}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": bool(online),
        "onlineMeetingProvider": data.get("onlineMeetingProvider", "unknown")
        if online
        else "unknown",
        "allowNewTimeProposals": data.get("allowNewTimeProposals", True),
        "isDraft": False,
        "hideAttendees": data.get("hideAttendees", False),
        "responseStatus": {
            "response": "organizer" if event.is_organizer else "notResponded",
            "time": "0001-01-01T00:00:00Z",
        },
        "body": {"contentType": content_type, "content": content},
        "start": format_in(item.start, time_zone or "UTC"),
        "end": format_in(item.end, time_zone or "UTC"),
        "location": location,
        "locations": [_location(v) for v in data.get("locations") or []]
        or ([location] if location.get("displayName") else []),
        "recurrence": data.get("recurrence") if item.kind == "seriesMaster" else None,
        "attendees": data.get("attendees") or [],
        "organizer": organizer,
        "onlineMeeting": online,
    }
    if event.transaction_id is not None:  # Graph's answers carry it only when it was set
        out["transactionId"] = event.transaction_id  # (user-post-events examples)
    if item.original_start is not None:
        out["originalStart"] = iso_utc(item.original_start)
    if select and "cancelledOccurrences" in select and item.kind == "seriesMaster":
        out["cancelledOccurrences"] = cancelled_occurrences(item, id_of)
    if expand_property_ids:
        out["singleValueExtendedProperties"] = [
            p
            for p in data.get("singleValueExtendedProperties") or []
            if str(p.get("id", "")).lower() in expand_property_ids
        ]
    if select:
        keep = (
            {"@odata.etag", "id"}
            | select
            | ({"singleValueExtendedProperties"} if expand_property_ids else set())
        )
        out = {k: v for k, v in out.items() if k in keep}
    out["@odata.context"] = f"{base_url}/v1.0/$metadata#users('{event.owner}')/events/$entity"
    return out
