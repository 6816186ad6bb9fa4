"""State-carrying 1:1 meeting events: the product's main output.

Each `meeting.upserted` carries the meeting's whole current snapshot of ALLOWED fields only
(there is no body field, by construction), with a version that only grows, so consumers
drop stale records and a replay from the start rebuilds the same state.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from shared.contracts.envelope import Contract, Envelope


def meeting_id_for(connection_id: str, graph_event_id: str) -> str:
    """Stable id of one calendar occurrence in one mailbox (writer and syncer agree on it)."""
    digest = hashlib.sha256(f"{connection_id}\x1f{graph_event_id}".encode()).hexdigest()
    return f"mtg_{digest[:32]}"


# The meetings topic is compacted and has two producers: each keeps its own key per meeting
# (ADR 0009), so compaction keeps every producer's latest record, never one producer's
# older record instead of the other's newer one. Both keys go to the same partition: the
# broker's partitioner ignores `WRITER_KEY_SUFFIX` (`shared.messaging.broker`).
WRITER_KEY_SUFFIX = "#smvue"


def syncer_record_key(meeting_id: str) -> str:
    """The syncer's records of a meeting (what Outlook holds): the meeting id."""
    return meeting_id


def writer_record_key(meeting_id: str) -> str:
    """The writer's records of a meeting it created (SMVue's own facts about it)."""
    return f"{meeting_id}{WRITER_KEY_SUFFIX}"


class MeetingSource(StrEnum):
    OUTLOOK = "outlook"  # found in the calendar by the syncer
    SMVUE = "smvue"  # created by the writer on a SMVue command


class Person(Contract):
    email: str = Field(max_length=320)
    display_name: str | None = Field(default=None, max_length=256)


class MeetingSnapshot(Contract):
    meeting_id: str
    connection_id: str
    manager_id: str
    member: Person
    member_id: str | None = Field(default=None, description="SMVue id of the team member.")
    organizer: Person | None = None
    graph_event_id: str = Field(max_length=512)
    ical_uid: str | None = Field(default=None, max_length=512)
    series_master_id: str | None = Field(default=None, max_length=512)
    event_type: Literal["singleInstance", "occurrence", "exception", "seriesMaster"]
    subject: str = Field(default="", max_length=1000)
    start: AwareDatetime = Field(description="UTC.")
    end: AwareDatetime = Field(description="UTC.")
    original_time_zone: str | None = Field(default=None, max_length=100)
    location: str | None = Field(default=None, max_length=1000)
    join_url: str | None = Field(default=None, max_length=2000)
    sensitivity: Literal["normal", "personal", "private", "confidential"] = "normal"
    is_cancelled: bool = False
    change_key: str | None = Field(default=None, max_length=200)
    source: MeetingSource
    created_in_smvue: bool = False
    smvue_command_id: str | None = None
    version: int = Field(ge=0)


class RemovalReason(StrEnum):
    DELETED = "deleted"  # deleted or cancelled-and-removed in Outlook
    NO_LONGER_ONE_ON_ONE = "no_longer_one_on_one"  # third person, made private, member left...
    OUT_OF_WINDOW = "out_of_window"


class MeetingRemoval(Contract):
    meeting_id: str
    connection_id: str
    manager_id: str
    graph_event_id: str = Field(max_length=512)
    reason: RemovalReason
    created_in_smvue: bool = Field(
        default=False,
        description="The writer's removal of a meeting it created says so, as its upserts do "
        "(after compaction it may be the writer's only record left).",
    )
    smvue_command_id: str | None = None
    version: int = Field(ge=0)


class MeetingUpserted(Envelope):
    type: Literal["meeting.upserted"] = "meeting.upserted"
    payload: MeetingSnapshot


class MeetingRemoved(Envelope):
    type: Literal["meeting.removed"] = "meeting.removed"
    payload: MeetingRemoval
