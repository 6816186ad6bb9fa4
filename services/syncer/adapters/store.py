"""The syncer's own state in MongoDB (no other service reads these collections).

- `sync_state`: per connection — mailbox addresses, deltaLink and its window, timers, the
  pending jobs (`pending.<job>`: when it was asked for), retry time and the worker's lease.
- `calendar_items`: allowed fields of the events in the window (to re-evaluate 1:1s when the
  roster changes without asking Graph again). Never a body: the model has none.
- `published`: per meeting ever published: its last version, content hash, and whether it is
  live (a retracted one stays as a tombstone, so a re-add gets a newer version).
- `rosters`: each manager's team, from the roster topic.
- `subscriptions`: the Graph subscription per connection (id, expiry, clientState hash).
- `subscription_cleanup`: deletions that failed at disconnect, retried for a while.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import Document, IndexSpec

INDEXES = [
    IndexSpec("calendar_items", [("connection_id", 1)]),
    IndexSpec("published", [("connection_id", 1)]),
    IndexSpec("sync_state", [("user_id", 1)]),
    IndexSpec("sync_state", [("has_pending", 1), ("retry_at", 1)]),
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

    # pending jobs -----------------------------------------------------------------------
    async def request(self, connection_id: str, job: str, at: datetime, **fields: Any) -> None:
        """Durably records that `job` is wanted (asking again only moves the time)."""
        await self.db.sync_state.update_one(
            {"_id": connection_id},
            {"$set": {f"pending.{job}": at, "has_pending": True, **fields}},
            upsert=True,
        )

    async def done(self, connection_id: str, job: str, requested_at: Any) -> None:
        """Clears `job` unless it was asked for again while it ran (then it runs again)."""
        await self.db.sync_state.update_one(
            {"_id": connection_id, f"pending.{job}": requested_at},
            {"$unset": {f"pending.{job}": ""}, "$set": {"failures": 0, "retry_at": None}},
        )
        await self._settle_has_pending(connection_id)

    async def _settle_has_pending(self, connection_id: str) -> None:
        """Nothing left pending: the timer stops waking this connection."""
        await self.db.sync_state.update_one(
            {"_id": connection_id, "pending": {}}, {"$set": {"has_pending": False}}
        )

    async def drop_pending(self, connection_id: str, *jobs: str) -> None:
        await self.db.sync_state.update_one(
            {"_id": connection_id}, {"$unset": {f"pending.{job}": "" for job in jobs}}
        )
        await self._settle_has_pending(connection_id)

    async def defer(self, connection_id: str, retry_at: datetime, failures: int) -> None:
        await self.db.sync_state.update_one(
            {"_id": connection_id}, {"$set": {"retry_at": retry_at, "failures": failures}}
        )

    async def with_pending(self, now: datetime) -> list[str]:
        """Connections with work waiting whose retry time (if any) has come."""
        cursor = self.db.sync_state.find(
            {
                "has_pending": True,
                "$or": [{"retry_at": None}, {"retry_at": {"$lte": now}}],
            },
            {"_id": 1},
        )
        return [str(doc["_id"]) async for doc in cursor]

    async def lease(self, connection_id: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        """One worker per connection across syncer instances: a time-bound lease."""
        result = await self.db.sync_state.update_one(
            {
                "_id": connection_id,
                "$or": [
                    {"lease_owner": owner},
                    {"lease_until": None},
                    {"lease_until": {"$lt": now}},
                ],
            },
            {"$set": {"lease_owner": owner, "lease_until": now + ttl}},
        )
        return result.matched_count == 1

    async def release(self, connection_id: str, owner: str) -> None:
        await self.db.sync_state.update_one(
            {"_id": connection_id, "lease_owner": owner},
            {"$set": {"lease_owner": None, "lease_until": None}},
        )

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

    async def drop_items(self, connection_id: str, keep: set[str] | None = None) -> None:
        """Drops the connection's stored events (all, or all but `keep`)."""
        query: dict[str, Any] = {"connection_id": connection_id}
        if keep is not None:
            query["event_id"] = {"$nin": sorted(keep)}
        await self.db.calendar_items.delete_many(query)

    # published meetings -----------------------------------------------------------------
    async def published(self, connection_id: str) -> dict[str, Document]:
        """Every meeting ever published for the connection (`live` False: retracted)."""
        return {d["_id"]: d async for d in self.db.published.find({"connection_id": connection_id})}

    async def mark_published(
        self,
        meeting_id: str,
        connection_id: str,
        event_id: str,
        *,
        version: int,
        content_hash: str | None,
    ) -> None:
        """Records what consumers now hold: a live snapshot (with its hash) or a tombstone."""
        await self.db.published.replace_one(
            {"_id": meeting_id},
            {
                "connection_id": connection_id,
                "event_id": event_id,
                "version": version,
                "hash": content_hash,
                "live": content_hash is not None,
            },
            upsert=True,
        )

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
