"""The syncer's own state in MongoDB (no other service reads these collections).

- `sync_state`: per connection — mailbox addresses, deltaLink and its window, timers.
- `calendar_items`: allowed fields of the events in the window (to re-evaluate 1:1s when the
  roster changes without asking Graph again). Never a body: the model has none.
- `published`: which meetings are currently published as 1:1s, with their content hash.
- `rosters`: each manager's team, from the roster topic.
- `subscriptions`: the Graph subscription per connection (id, expiry, clientState hash).
- `subscription_cleanup`: deletions that failed at disconnect, retried for a while.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document, IndexSpec

INDEXES = [
    IndexSpec("calendar_items", [("connection_id", 1)]),
    IndexSpec("published", [("connection_id", 1)]),
    IndexSpec("sync_state", [("user_id", 1)]),
    IndexSpec("subscriptions", [("expires_at", 1)]),
]


class SyncerStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db

    # sync state -------------------------------------------------------------------------
    async def state(self, connection_id: str) -> Document | None:
        return await self.db.sync_state.find_one({"_id": connection_id})

    async def states(self, **query: Any) -> list[Document]:
        return [doc async for doc in self.db.sync_state.find(query)]

    async def set_state(self, connection_id: str, **fields: Any) -> None:
        await self.db.sync_state.update_one({"_id": connection_id}, {"$set": fields}, upsert=True)

    # calendar items ---------------------------------------------------------------------
    async def items(self, connection_id: str) -> list[Document]:
        return [d async for d in self.db.calendar_items.find({"connection_id": connection_id})]

    async def put_item(self, connection_id: str, event_id: str, event: dict[str, Any]) -> None:
        await self.db.calendar_items.replace_one(
            {"_id": f"{connection_id}|{event_id}"},
            {"connection_id": connection_id, "event_id": event_id, "event": event},
            upsert=True,
        )

    async def drop_item(self, connection_id: str, event_id: str) -> None:
        await self.db.calendar_items.delete_one({"_id": f"{connection_id}|{event_id}"})

    async def drop_items(self, connection_id: str) -> None:
        await self.db.calendar_items.delete_many({"connection_id": connection_id})

    # published meetings -----------------------------------------------------------------
    async def published(self, connection_id: str) -> dict[str, Document]:
        return {d["_id"]: d async for d in self.db.published.find({"connection_id": connection_id})}

    async def mark_published(
        self, meeting_id: str, connection_id: str, event_id: str, content_hash: str
    ) -> None:
        await self.db.published.replace_one(
            {"_id": meeting_id},
            {"connection_id": connection_id, "event_id": event_id, "hash": content_hash},
            upsert=True,
        )

    async def unmark_published(self, meeting_id: str) -> None:
        await self.db.published.delete_one({"_id": meeting_id})

    # rosters ----------------------------------------------------------------------------
    async def roster(self, manager_id: str) -> Document | None:
        return await self.db.rosters.find_one({"_id": manager_id})

    async def put_roster(
        self, manager_id: str, members: list[dict[str, Any]], version: int
    ) -> bool:
        """Stores the roster unless a newer version is already there; True if stored."""
        result = await self.db.rosters.update_one(
            {
                "_id": manager_id,
                "$or": [{"version": {"$lt": version}}, {"version": {"$exists": False}}],
            },
            {"$set": {"members": members, "version": version}},
        )
        if result.matched_count:
            return True
        if await self.db.rosters.find_one({"_id": manager_id}) is None:
            await self.db.rosters.insert_one(
                {"_id": manager_id, "members": members, "version": version}
            )
            return True
        return False

    # subscriptions ----------------------------------------------------------------------
    async def subscription(self, connection_id: str) -> Document | None:
        return await self.db.subscriptions.find_one({"_id": connection_id})

    async def put_subscription(
        self,
        connection_id: str,
        subscription_id: str,
        expires_at: datetime,
        client_state_sha256: str,
    ) -> None:
        await self.db.subscriptions.replace_one(
            {"_id": connection_id},
            {
                "subscription_id": subscription_id,
                "expires_at": expires_at,
                "client_state_sha256": client_state_sha256,
            },
            upsert=True,
        )

    async def drop_subscription(self, connection_id: str) -> None:
        await self.db.subscriptions.delete_one({"_id": connection_id})

    async def expiring_subscriptions(self, before: datetime) -> list[Document]:
        return [d async for d in self.db.subscriptions.find({"expires_at": {"$lt": before}})]

    # cleanup ----------------------------------------------------------------------------
    async def put_cleanup(self, subscription_id: str, doc: dict[str, Any]) -> None:
        await self.db.subscription_cleanup.replace_one({"_id": subscription_id}, doc, upsert=True)

    async def cleanups(self) -> list[Document]:
        return [d async for d in self.db.subscription_cleanup.find({})]

    async def drop_cleanup(self, subscription_id: str) -> None:
        await self.db.subscription_cleanup.delete_one({"_id": subscription_id})
