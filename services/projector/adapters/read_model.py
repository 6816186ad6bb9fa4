"""The projector's collections: `one_on_ones`, `cadence`, `connections`.

Writes are the conditional, versioned upserts of `domain.merge.VersionedWrite`: the filter
`{"_id": id, "version": {"$lt": v}}` with `upsert=True` either updates an older document,
inserts a new one, or — when a same-or-newer version is stored — tries to insert a second
document with that `_id` and fails with DuplicateKeyError, which means "stale, drop it".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.projector.domain.cadence import LOOK_BACK, Cadence, cadence_id
from services.projector.domain.merge import VersionedWrite
from shared.mongo import Document, IndexSpec
from shared.observability.logging import get_logger

log = get_logger(__name__)

ONE_ON_ONES = "one_on_ones"
CADENCE = "cadence"
CONNECTIONS = "connections"

INDEXES = [
    IndexSpec(ONE_ON_ONES, [("manager_id", 1), ("start", 1)]),
    IndexSpec(
        ONE_ON_ONES,
        [("manager_id", 1), ("member_email", 1), ("start", 1)],
    ),
    IndexSpec(CADENCE, [("manager_id", 1), ("member_email", 1)]),
    IndexSpec(CONNECTIONS, [("user_id", 1)]),
]

# What the dashboard and cadence count: not removed, and meetings on a day — a series
# master (should one ever be published) stands for its occurrences, it isn't one.
LIVE_OCCURRENCES: dict[str, Any] = {"removed": False, "event_type": {"$ne": "seriesMaster"}}


@dataclass(frozen=True)
class Pair:
    """A manager-member pair, as stored on a meeting document."""

    manager_id: str
    member_email: str


@dataclass(frozen=True)
class WriteResult:
    applied: bool  # False: a same-or-newer version was stored, the write was dropped
    pair_before: Pair | None  # whose cadence the document counted for before the write


def _pair(doc: Document | None) -> Pair | None:
    if doc is None or not doc.get("manager_id") or not doc.get("member_email"):
        return None
    return Pair(doc["manager_id"], doc["member_email"])


async def apply_versioned(collection: AsyncCollection[Document], write: VersionedWrite) -> bool:
    """The conditional upsert (+ the sticky update); True if the versioned part applied."""
    update: dict[str, Any] = {"$set": {**write.set_fields, "version": write.version}}
    if write.set_on_insert:
        update["$setOnInsert"] = dict(write.set_on_insert)
    if write.unset_fields:
        update["$unset"] = dict.fromkeys(write.unset_fields, "")
    try:
        await collection.update_one(
            {"_id": write.doc_id, "version": {"$lt": write.version}}, update, upsert=True
        )
        applied = True
    except DuplicateKeyError:
        log.debug("stale write dropped", collection=collection.name, version=write.version)
        applied = False
    if write.sticky:
        # Unconditional, but never creates a document: the versioned write just made sure
        # one exists (its own, or the newer one that made it stale).
        await collection.update_one({"_id": write.doc_id}, {"$set": dict(write.sticky)})
    return applied


class MeetingStore:
    """`one_on_ones`: `_id` = meeting id; snapshot fields + `version` + `removed`."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[ONE_ON_ONES]

    async def apply(self, write: VersionedWrite) -> WriteResult:
        before = await self._collection.find_one(
            {"_id": write.doc_id}, projection={"manager_id": 1, "member_email": 1}
        )
        applied = await apply_versioned(self._collection, write)
        return WriteResult(applied=applied, pair_before=_pair(before))

    async def counts(self, connection_id: str) -> dict[str, int]:
        """How many of the connection's meetings are live and how many removed (operators)."""
        live = await self._collection.count_documents(
            {"connection_id": connection_id, "removed": False}
        )
        removed = await self._collection.count_documents(
            {"connection_id": connection_id, "removed": True}
        )
        return {"live": live, "removed": removed}

    async def in_range(self, manager_id: str, start: datetime, end: datetime) -> list[Document]:
        """Live meetings overlapping [start, end), cancelled ones included, by start."""
        query = {
            "manager_id": manager_id,
            "start": {"$lt": end},
            "end": {"$gt": start},
            **LIVE_OCCURRENCES,
        }
        return [doc async for doc in self._collection.find(query).sort([("start", 1), ("_id", 1)])]

    async def pair_history(self, pair: Pair, now: datetime) -> list[Document]:
        """What the pair's cadence needs: its meetings from 90 days back on, and the last
        one held before that (so "last held" survives a quiet quarter)."""
        base = {
            "manager_id": pair.manager_id,
            "member_email": pair.member_email,
            **LIVE_OCCURRENCES,
        }
        window_start = now - LOOK_BACK
        recent = [
            doc
            async for doc in self._collection.find({**base, "start": {"$gte": window_start}}).sort(
                "start", 1
            )
        ]
        older = await self._collection.find_one(
            {**base, "start": {"$lt": window_start}, "end": {"$lte": now}, "is_cancelled": False},
            sort=[("start", -1)],
        )
        return ([older] if older is not None else []) + recent


class CadenceStore:
    """`cadence`: `_id` = "{manager_id}:{member email}", the pair's cadence when it last
    changed (the query API recomputes it relative to the time of the request)."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[CADENCE]

    async def put(
        self,
        pair: Pair,
        member: MemberInfo,
        cadence: Cadence,
        computed_at: datetime,
    ) -> None:
        doc = {
            "manager_id": pair.manager_id,
            "member_email": pair.member_email,
            "member_name": member.display_name,
            "member_id": member.member_id,
            "last_held": cadence.last_held,
            "next_scheduled": cadence.next_scheduled,
            "held_last_90_days": cadence.held_last_90_days,
            "median_interval_days": cadence.median_interval_days,
            "overdue_horizon_days": cadence.overdue_horizon_days,
            "overdue": cadence.overdue,
            "computed_at": computed_at,
        }
        await self._collection.replace_one(
            {"_id": cadence_id(pair.manager_id, pair.member_email)}, doc, upsert=True
        )

    async def delete(self, pair: Pair) -> None:
        """The pair has no live meetings left: it leaves the list."""
        await self._collection.delete_one({"_id": cadence_id(pair.manager_id, pair.member_email)})

    async def for_manager(self, manager_id: str) -> list[Document]:
        cursor = self._collection.find({"manager_id": manager_id}).sort("member_email", 1)
        return [doc async for doc in cursor]


@dataclass(frozen=True)
class MemberInfo:
    display_name: str | None
    member_id: str | None


def member_info(history: list[Document]) -> MemberInfo:
    """The member's name and id as the pair's latest meeting has them."""
    latest = max(history, key=lambda doc: doc["start"])
    member = latest.get("member") or {}
    return MemberInfo(display_name=member.get("display_name"), member_id=latest.get("member_id"))


class ConnectionStore:
    """`connections`: `_id` = connection id; the latest snapshot by version."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[CONNECTIONS]

    async def apply(self, write: VersionedWrite) -> bool:
        return await apply_versioned(self._collection, write)

    async def get(self, connection_id: str) -> Document | None:
        return await self._collection.find_one({"_id": connection_id})
