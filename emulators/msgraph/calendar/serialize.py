"""Rendering an instance as Graph's event JSON: the CSDL's property names and casing."""

from __future__ import annotations

from typing import Any

from emulators.msgraph.calendar.store import Instance
from emulators.msgraph.calendar.timezones import format_in, iso_utc
from emulators.msgraph.directory import Directory


def render(
    item: Instance,
    directory: Directory,
    *,
    base_url: str,
    time_zone: str | None = None,
    select: set[str] | None = None,
    expand_property_ids: set[str] | None = None,
) -> dict[str, Any]:
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
    location = data.get("location") or {
        "displayName": "",
        "locationType": "default",
        "uniqueIdType": "unknown",
        "address": {},
        "coordinates": {},
    }
    online = data.get("onlineMeeting")
    out: dict[str, Any] = {
        "@odata.etag": f'W/"{item.change_key}"',
        "id": item.id,
        "createdDateTime": iso_utc(event.created),
        "lastModifiedDateTime": iso_utc(item.modified),
        "changeKey": item.change_key,
        "categories": data.get("categories") or [],
        "transactionId": event.transaction_id,
        "originalStartTimeZone": data.get("originalStartTimeZone") or event.start_tz,
        "originalEndTimeZone": data.get("originalEndTimeZone") or event.end_tz,
        "iCalUId": event.ical_uid,
        "uid": event.ical_uid,
        "reminderMinutesBeforeStart": data.get("reminderMinutesBeforeStart", 15),
        "isReminderOn": data.get("isReminderOn", True),
        "hasAttachments": False,
        "subject": data.get("subject", ""),
        "bodyPreview": content[:255],
        "importance": data.get("importance", "normal"),
        "sensitivity": data.get("sensitivity", "normal"),
        "isAllDay": bool(data.get("isAllDay", False)),
        "isCancelled": bool(data.get("isCancelled", False)),
        "isOrganizer": event.is_organizer,
        "responseRequested": data.get("responseRequested", True),
        "seriesMasterId": event.id if item.kind in ("occurrence", "exception") else None,
        "showAs": data.get("showAs", "busy"),
        "type": item.kind,
        "webLink": f"https://outlook.office365.com/owa/?itemid={item.id}&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": bool(online),
        "onlineMeetingProvider": data.get("onlineMeetingProvider", "unknown")
        if online
        else "unknown",
        "allowNewTimeProposals": data.get("allowNewTimeProposals", True),
        "occurrenceId": None,
        "isDraft": False,
        "hideAttendees": data.get("hideAttendees", False),
        "responseStatus": {
            "response": "organizer" if event.is_organizer else "notResponded",
            "time": "0001-01-01T00:00:00Z",
        },
        "body": {"contentType": body.get("contentType", "text"), "content": content},
        "start": format_in(item.start, time_zone or "UTC"),
        "end": format_in(item.end, time_zone or "UTC"),
        "location": location,
        "locations": data.get("locations") or ([location] if location.get("displayName") else []),
        "recurrence": data.get("recurrence") if item.kind == "seriesMaster" else None,
        "attendees": data.get("attendees") or [],
        "organizer": organizer,
        "onlineMeeting": online,
    }
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
