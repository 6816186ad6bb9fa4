"""From a qualifying Graph event to the published meeting snapshot (allowed fields only),
and the content hash that lets the syncer skip publishing what did not change (see
`versions.py` for how the version is derived)."""

from __future__ import annotations

import hashlib

from services.syncer.domain.graph_event import GraphEvent
from services.syncer.domain.one_on_one import OneOnOne
from shared.contracts.meetings import MeetingSnapshot, MeetingSource, Person, meeting_id_for


def snapshot(
    event: GraphEvent,
    match: OneOnOne,
    *,
    connection_id: str,
    manager_id: str,
    version: int,
) -> MeetingSnapshot:
    assert event.start is not None and event.end is not None
    organizer = None
    if event.organizer and event.organizer.email_address and event.organizer.email_address.address:
        organizer = Person(
            email=event.organizer.email_address.address,
            display_name=event.organizer.email_address.name,
        )
    kind = (
        event.type
        if event.type in ("singleInstance", "occurrence", "exception")
        else "singleInstance"
    )
    return MeetingSnapshot(
        meeting_id=meeting_id_for(connection_id, event.id),
        connection_id=connection_id,
        manager_id=manager_id,
        member=Person(email=match.member.email, display_name=match.member.display_name),
        member_id=match.member.member_id,
        organizer=organizer,
        graph_event_id=event.id,
        ical_uid=event.ical_uid,
        series_master_id=event.series_master_id,
        event_type=kind,
        subject=(event.subject or "")[:1000],
        start=event.start.utc(),
        end=event.end.utc(),
        original_time_zone=event.original_start_time_zone,
        location=(event.location.display_name or None) if event.location else None,
        join_url=event.online_meeting.join_url if event.online_meeting else None,
        sensitivity=event.sensitivity
        if event.sensitivity in ("normal", "personal", "confidential")
        else "normal",
        is_cancelled=event.is_cancelled,
        change_key=event.change_key,
        source=MeetingSource.OUTLOOK,
        version=version,
    )


def content_hash(meeting: MeetingSnapshot) -> str:
    """What a consumer would see change (the version aside): skip publishing when equal."""
    body = meeting.model_dump_json(exclude={"version"})
    return hashlib.sha256(body.encode()).hexdigest()
