"""From a qualifying Graph event to the published meeting snapshot (allowed fields only),
and the content hash that lets the syncer skip publishing what did not change (see
`versions.py` for how the version is derived)."""

from __future__ import annotations

import hashlib

from services.syncer.domain.one_on_one import OneOnOne
from shared.contracts.meetings import MeetingSnapshot, MeetingSource, Person
from shared.graph.event import GraphEvent
from shared.graph.meeting import meeting_from_event


def snapshot(
    event: GraphEvent,
    match: OneOnOne,
    *,
    connection_id: str,
    manager_id: str,
    version: int,
) -> MeetingSnapshot:
    return meeting_from_event(
        event,
        connection_id=connection_id,
        manager_id=manager_id,
        member=Person(email=match.member.email, display_name=match.member.display_name),
        member_id=match.member.member_id,
        version=version,
        source=MeetingSource.OUTLOOK,
    )


def content_hash(meeting: MeetingSnapshot) -> str:
    """What a consumer would see change (the version aside): skip publishing when equal."""
    body = meeting.model_dump_json(exclude={"version"})
    return hashlib.sha256(body.encode()).hexdigest()
