"""The writer's own collections.

- `writer_ownership`: the events SMVue created, by meeting id — the only events the writer
  will ever reschedule or cancel.
- `writer_commands`: commands finished, with their outcome, so a redelivered command is
  recognised and skipped (Graph's transactionId covers a crash before this is written).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document, IndexSpec

OWNERSHIP = "writer_ownership"
COMMANDS = "writer_commands"
INDEXES = [
    IndexSpec(OWNERSHIP, [("connection_id", 1)]),
    IndexSpec(OWNERSHIP, [("command_id", 1)], unique=True),
]


@dataclass(frozen=True)
class Ownership:
    meeting_id: str
    connection_id: str
    manager_id: str
    graph_event_id: str
    ical_uid: str | None
    command_id: str
    member_email: str
    member_name: str
    time_zone: str
    state: str  # active | cancelling | cancelled | gone
    cancel_command_id: str | None = None  # the cancel under way (state cancelling)


class WriterStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._ownership = db[OWNERSHIP]
        self._commands = db[COMMANDS]

    async def owned(self, meeting_id: str) -> Ownership | None:
        doc = await self._ownership.find_one({"_id": meeting_id})
        return None if doc is None else _ownership(doc)

    async def own(self, ownership: Ownership) -> None:
        """Records (idempotently) that SMVue created this event."""
        fields = {k: v for k, v in ownership.__dict__.items() if k != "meeting_id"}
        await self._ownership.update_one(
            {"_id": ownership.meeting_id},
            {"$set": fields, "$setOnInsert": {"created_at": datetime.now(UTC)}},
            upsert=True,
        )

    async def mark(self, meeting_id: str, state: str) -> None:
        await self._ownership.update_one(
            {"_id": meeting_id}, {"$set": {"state": state, "changed_at": datetime.now(UTC)}}
        )

    async def begin_cancel(self, meeting_id: str, command_id: str) -> bool:
        """Records the intent before Graph's cancel (active → cancelling, by this command):
        a retry of the same command then knows a missing event is its own doing. False
        when the meeting is no longer active (another command got there first)."""
        result = await self._ownership.update_one(
            {"_id": meeting_id, "state": "active"},
            {
                "$set": {
                    "state": "cancelling",
                    "cancel_command_id": command_id,
                    "changed_at": datetime.now(UTC),
                }
            },
        )
        return result.modified_count == 1

    async def abandon_cancel(self, meeting_id: str, command_id: str) -> None:
        """The cancel failed for good: the meeting is active again (if still ours to undo)."""
        await self._ownership.update_one(
            {"_id": meeting_id, "state": "cancelling", "cancel_command_id": command_id},
            {"$set": {"state": "active", "changed_at": datetime.now(UTC)}},
        )

    async def finished(self, command_id: str) -> Document | None:
        return await self._commands.find_one({"_id": command_id})

    async def finish(self, command_id: str, kind: str, outcome: dict[str, Any]) -> None:
        await self._commands.update_one(
            {"_id": command_id},
            {"$setOnInsert": {"kind": kind, "outcome": outcome, "at": datetime.now(UTC)}},
            upsert=True,
        )


def _ownership(doc: Document) -> Ownership:
    return Ownership(
        meeting_id=str(doc["_id"]),
        connection_id=doc["connection_id"],
        manager_id=doc["manager_id"],
        graph_event_id=doc["graph_event_id"],
        ical_uid=doc.get("ical_uid"),
        command_id=doc["command_id"],
        member_email=doc["member_email"],
        member_name=doc["member_name"],
        time_zone=doc["time_zone"],
        state=doc.get("state", "active"),
        cancel_command_id=doc.get("cancel_command_id"),
    )
