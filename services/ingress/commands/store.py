"""The ingress's own collections for commands.

- `command_status`: one document per command, fed by the ingress when it accepts one and by
  the outcomes topic when it completes; `GET /v1/commands/{id}` answers from it.
- `team_rosters`: each manager's current team (newest version wins), fed by the roster API
  and the roster topic; schedule commands are checked against it.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.contracts.outcomes import CommandFailed, CommandSucceeded
from shared.contracts.roster import Roster
from shared.mongo import Document, IndexSpec

STATUS = "command_status"
ROSTERS = "team_rosters"
INDEXES: list[IndexSpec] = []


class CommandStatusStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[STATUS]

    async def get(self, command_id: str) -> Document | None:
        return await self._collection.find_one({"_id": command_id})

    async def claim(
        self, command_id: str, kind: str, manager_id: str, fingerprint: str
    ) -> Document | None:
        """Claims the id for this command: one insert (the id is unique), so of two requests
        racing with one id only one claims it. None when claimed now; else what holds it."""
        try:
            await self._collection.insert_one(
                {
                    "_id": command_id,
                    "kind": kind,
                    "manager_id": manager_id,
                    "fingerprint": fingerprint,
                    "state": "claimed",
                    "claimed_at": datetime.now(UTC),
                }
            )
        except DuplicateKeyError:
            held = await self._collection.find_one({"_id": command_id})
            if held is None:  # released meanwhile (the other one was refused): try again
                return await self.claim(command_id, kind, manager_id, fingerprint)
            return held
        return None

    async def release(self, command_id: str, fingerprint: str) -> None:
        """The claimed command was refused before it was published: free the id."""
        await self._collection.delete_one(
            {"_id": command_id, "state": "claimed", "fingerprint": fingerprint}
        )

    async def accepted(self, command_id: str, kind: str, manager_id: str, fingerprint: str) -> None:
        """Records the acceptance (after the publish); an outcome that raced ahead keeps its
        state."""
        now = datetime.now(UTC)
        claimed = await self._collection.update_one(
            {"_id": command_id, "state": "claimed"},
            {"$set": {"state": "accepted", "fingerprint": fingerprint, "accepted_at": now}},
        )
        if claimed.matched_count:
            return
        await self._collection.update_one(
            {"_id": command_id},
            {
                "$set": {"fingerprint": fingerprint, "accepted_at": now},
                "$setOnInsert": {"kind": kind, "manager_id": manager_id, "state": "accepted"},
            },
            upsert=True,
        )

    async def completed(self, outcome: CommandSucceeded | CommandFailed) -> None:
        """The outcome (first one wins: a duplicate or replay changes nothing)."""
        payload = outcome.payload
        fields: dict[str, Any] = {
            "kind": payload.kind.value,
            "manager_id": payload.manager_id,
            "completed_at": payload.completed_at,
        }
        if isinstance(outcome, CommandSucceeded):
            fields |= {"state": "succeeded", "result": outcome.payload.model_dump(mode="json")}
        else:
            failure = outcome.payload
            fields |= {
                "state": "failed",
                "meeting_id": failure.meeting_id,
                "failure": {
                    "code": failure.code.value,
                    "message": failure.message,
                    "detail": failure.detail,
                    "meeting_id": failure.meeting_id,
                },
            }
        with contextlib.suppress(DuplicateKeyError):  # completed already: the first stands
            await self._collection.update_one(
                {"_id": payload.command_id, "state": {"$nin": ["succeeded", "failed"]}},
                {"$set": fields},
                upsert=True,
            )


class RosterStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[ROSTERS]

    async def get(self, manager_id: str) -> Roster | None:
        doc = await self._collection.find_one({"_id": manager_id})
        return None if doc is None else Roster.model_validate(doc["roster"])

    async def team(self, manager_id: str) -> set[str]:
        roster = await self.get(manager_id)
        return set() if roster is None else {m.email.lower() for m in roster.members}

    async def put(self, roster: Roster) -> bool:
        """Stores the roster unless a newer (or the same) version is there; True if stored."""
        try:
            result = await self._collection.update_one(
                {"_id": roster.manager_id, "version": {"$lt": roster.version}},
                {"$set": {"version": roster.version, "roster": roster.model_dump(mode="json")}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # a newer version is stored
        return result.modified_count == 1 or result.upserted_id is not None
