"""The topic registry: every Kafka topic the system uses, its key, partitions, retention,
the messages it carries, and its dead-letter topic.

`smvue-sync topics create` creates them from here; `schemas/asyncapi.json` is generated
from here. A topic's name carries its major version: a breaking change is a new topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from shared.contracts.audit import AuditRecorded
from shared.contracts.commands import (
    CancelMeeting,
    DisconnectCalendar,
    RescheduleMeeting,
    ScheduleMeeting,
    SyncNow,
)
from shared.contracts.connections import (
    ConnectionAttemptFailed,
    ConnectionConnected,
    ConnectionDisconnected,
    ConnectionStatusChanged,
)
from shared.contracts.envelope import Envelope
from shared.contracts.meetings import MeetingRemoved, MeetingUpserted
from shared.contracts.notifications import GraphChangeNotified, GraphLifecycleNotified
from shared.contracts.outcomes import CommandFailed, CommandSucceeded
from shared.contracts.roster import RosterUpdated
from shared.contracts.subscriptions import SubscriptionActivated, SubscriptionEnded

DAY_MS = 24 * 60 * 60 * 1000
FOREVER = -1


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str
    key: str  # what the record key is: ordering is per key
    messages: tuple[type[Envelope], ...]
    partitions: int = 6
    config: dict[str, str] = field(default_factory=dict)
    has_dead_letter: bool = True  # consumed topics get `<name>.dlq`

    @property
    def dead_letter(self) -> str:
        return f"{self.name}.dlq"

    def adapter(self) -> TypeAdapter[Any]:
        """Parses a record's value into the right message class by its `type`."""
        return _adapter(self.messages)


def _adapter(messages: tuple[type[Envelope], ...]) -> TypeAdapter[Any]:
    if len(messages) == 1:
        return TypeAdapter(messages[0])
    union = Union[messages]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(Annotated[union, Field(discriminator="type")])


def _retention(days: int) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS)}


_COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": str(DAY_MS)}

NOTIFICATIONS = TopicSpec(
    name="smvue.calendar.notifications.v1",
    description="Graph change and lifecycle notifications accepted by the ingress.",
    key="connection id",
    messages=(GraphChangeNotified, GraphLifecycleNotified),
    config=_retention(7),
)
CONNECTION_COMMANDS = TopicSpec(
    name="smvue.calendar.connection-commands.v1",
    description="Sync Now and disconnect commands from the SMVue backend.",
    key="connection id",
    messages=(SyncNow, DisconnectCalendar),
    config=_retention(7),
)
MEETING_COMMANDS = TopicSpec(
    name="smvue.calendar.meeting-commands.v1",
    description="Schedule / reschedule / cancel 1:1 commands from the SMVue backend.",
    key="connection id",
    messages=(ScheduleMeeting, RescheduleMeeting, CancelMeeting),
    config=_retention(14),
)
COMMAND_OUTCOMES = TopicSpec(
    name="smvue.calendar.command-outcomes.v1",
    description="What became of each command: succeeded, or failed with a user-facing code.",
    key="connection id",
    messages=(CommandSucceeded, CommandFailed),
    config=_retention(30),
)
CONNECTIONS = TopicSpec(
    name="smvue.calendar.connections.v1",
    description="Connection lifecycle and status snapshots (the Integrations card).",
    key="connection id",
    messages=(
        ConnectionConnected,
        ConnectionStatusChanged,
        ConnectionDisconnected,
        ConnectionAttemptFailed,
    ),
    config={"cleanup.policy": "delete", "retention.ms": str(FOREVER)},
)
SUBSCRIPTIONS = TopicSpec(
    name="smvue.calendar.subscriptions.v1",
    description="Active Graph subscriptions per connection, with the clientState's hash only.",
    key="connection id",
    messages=(SubscriptionActivated, SubscriptionEnded),
    config=dict(_COMPACTED),
)
MEETINGS = TopicSpec(
    name="smvue.calendar.meetings.v1",
    description="State-carrying 1:1 meeting events with growing versions.",
    key="meeting id (syncer); meeting id#smvue (writer): one key per producer, ADR 0009",
    messages=(MeetingUpserted, MeetingRemoved),
    config=dict(_COMPACTED),
)
ROSTER = TopicSpec(
    name="smvue.team.roster.v1",
    description="Each manager's whole team, from the SMVue backend.",
    key="manager id",
    messages=(RosterUpdated,),
    partitions=3,
    config=dict(_COMPACTED),
)
AUDIT = TopicSpec(
    name="smvue.calendar.audit.v1",
    description="Every calendar operation performed. Long retention, never compacted.",
    key="connection id",
    messages=(AuditRecorded,),
    config=_retention(400),
    has_dead_letter=False,
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    NOTIFICATIONS,
    CONNECTION_COMMANDS,
    MEETING_COMMANDS,
    COMMAND_OUTCOMES,
    CONNECTIONS,
    SUBSCRIPTIONS,
    MEETINGS,
    ROSTER,
    AUDIT,
)

DEAD_LETTER_CONFIG = _retention(30)


def all_message_types() -> list[type[Envelope]]:
    seen: dict[str, type[Envelope]] = {}
    for topic in ALL_TOPICS:
        for message in topic.messages:
            seen[message.model_fields["type"].default] = message
    return list(seen.values())


def topic_for(message: type[Envelope] | Envelope) -> TopicSpec:
    cls = message if isinstance(message, type) else type(message)
    for topic in ALL_TOPICS:
        if cls in topic.messages:
            return topic
    raise LookupError(f"no topic carries {cls.__name__}")
