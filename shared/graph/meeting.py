"""From an allow-listed Graph event to the published meeting snapshot.

One mapping for both producers of meeting events — the syncer (what it finds in Outlook)
and the writer (what it just created) — so the two agree field for field on the same
Graph event and the projector can merge them.
"""

from __future__ import annotations

from shared.contracts.meetings import MeetingSnapshot, MeetingSource, Person, meeting_id_for
from shared.graph.event import GraphEvent

_SNAPSHOT_KINDS = ("singleInstance", "occurrence", "exception")
_SENSITIVITIES = ("normal", "personal", "confidential")


def meeting_from_event(
    event: GraphEvent,
    *,
    connection_id: str,
    manager_id: str,
    member: Person,
    member_id: str | None,
    version: int,
    source: MeetingSource,
    smvue_command_id: str | None = None,
) -> MeetingSnapshot:
    if event.start is None or event.end is None:
        raise ValueError("a meeting needs a start and an end")
    organizer = None
    if event.organizer and event.organizer.email_address and event.organizer.email_address.address:
        organizer = Person(
            email=event.organizer.email_address.address,
            display_name=event.organizer.email_address.name,
        )
    return MeetingSnapshot(
        meeting_id=meeting_id_for(connection_id, event.id),
        connection_id=connection_id,
        manager_id=manager_id,
        member=member,
        member_id=member_id,
        organizer=organizer,
        graph_event_id=event.id,
        ical_uid=event.ical_uid,
        series_master_id=event.series_master_id,
        event_type=event.type if event.type in _SNAPSHOT_KINDS else "singleInstance",
        subject=(event.subject or "")[:1000],
        start=event.start.utc(),
        end=event.end.utc(),
        original_time_zone=event.original_start_time_zone,
        location=(event.location.display_name or None) if event.location else None,
        join_url=event.online_meeting.join_url if event.online_meeting else None,
        sensitivity=event.sensitivity if event.sensitivity in _SENSITIVITIES else "normal",
        is_cancelled=event.is_cancelled,
        change_key=event.change_key,
        source=source,
        created_in_smvue=source is MeetingSource.SMVUE,
        smvue_command_id=smvue_command_id,
        version=version,
    )
