"""The projector's collections: `one_on_ones` and `connections` (cadence is computed at
query time from `one_on_ones`, ADR 0007).

Writes are the conditional, versioned upserts of `domain.merge.VersionedWrite`: the filter
`{"_id": id, "version": {"$lt": v}}` with `upsert=True` either updates an older document,
inserts a new one, or — when a same-or-newer version is stored — tries to insert a second
document with that `_id` and fails with a duplicate-key error (11000), which means "stale,
drop it". A batch goes as one unordered bulk write of those upserts (a stale one fails
alone and is dropped), plus one bulk of the sticky updates when the batch has any. A large
batch (an import's) is first tried as plain inserts: only the writes whose document exists
go on to the upsert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.projector.domain.cadence import LOOK_BACK
from services.projector.domain.merge import VersionedWrite
from shared.mongo import Document, IndexSpec, duplicate_keys_only
from shared.observability.logging import get_logger

log = get_logger(__name__)

ONE_ON_ONES = "one_on_ones"
CONNECTIONS = "connections"

INDEXES = [
    IndexSpec(ONE_ON_ONES, [("manager_id", 1), ("start", 1)]),
    IndexSpec(
        ONE_ON_ONES,
        [("manager_id", 1), ("member_email", 1), ("start", 1)],
    ),
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


ID_INDEX = "_id_"


def _versioned_update(write: VersionedWrite) -> UpdateOne:
    update: dict[str, Any] = {"$set": {**write.set_fields, "version": write.version}}
    if write.set_on_insert:
        update["$setOnInsert"] = dict(write.set_on_insert)
    if write.unset_fields:
        update["$unset"] = dict.fromkeys(write.unset_fields, "")
    # The hint: SecantusDB plans `{_id, version: {$lt}}` as a scan, so without it every
    # upsert got slower as the collection grew (1,018 → 185 upserts/s over 6,000 documents,
    # flat with the hint); on MongoDB it is the index the planner picks anyway.
    return UpdateOne(
        {"_id": write.doc_id, "version": {"$lt": write.version}},
        update,
        upsert=True,
        hint=ID_INDEX,
    )


# A batch this large is tried as inserts first (an import's batches are, a change's are
# a record or two): SecantusDB inserts a new document in about a third of an upsert's
# time and refuses one that exists in a fifth (`docs/benchmarks.md`), so a batch of new
# meetings costs one insert command and a batch of known ones one failed insert more.
INSERT_FIRST_AT = 16


def _as_inserted(write: VersionedWrite) -> Document:
    """The document the versioned upsert would create when none exists."""
    fields = {**write.set_on_insert, **write.set_fields, "version": write.version}
    return {"_id": write.doc_id, **fields}


async def _insert_new(
    collection: AsyncCollection[Document], writes: Sequence[VersionedWrite]
) -> list[VersionedWrite]:
    """Inserts what is new of `writes` (one unordered insert); returns the others (a
    document with their id exists: they go through the versioned upsert)."""
    try:
        await collection.insert_many([_as_inserted(w) for w in writes], ordered=False)
    except BulkWriteError as exc:
        if not duplicate_keys_only(exc):
            raise
        return [writes[error["index"]] for error in exc.details["writeErrors"]]
    return []


async def apply_versioned(
    collection: AsyncCollection[Document], writes: Sequence[VersionedWrite]
) -> int:
    """The conditional upserts of `writes` (at most one per document: `merge.coalesce`) as
    one unordered bulk write — a batch of `INSERT_FIRST_AT` or more inserted first, only
    those whose document exists upserted —, then their sticky updates as one more;
    returns how many of the versioned writes applied (the rest were stale and dropped)."""
    if not writes:
        return 0
    known = await _insert_new(collection, writes) if len(writes) >= INSERT_FIRST_AT else writes
    stale = 0
    if known:
        try:
            await collection.bulk_write([_versioned_update(w) for w in known], ordered=False)
        except BulkWriteError as exc:
            stale = duplicate_keys_only(exc)
            if not stale:
                raise
            log.debug("stale writes dropped", collection=collection.name, stale=stale)
    sticky = [UpdateOne({"_id": w.doc_id}, {"$set": dict(w.sticky)}) for w in writes if w.sticky]
    if sticky:
        # Unconditional, but never creates a document: the versioned write just made sure
        # one exists (its own, or the newer one that made it stale).
        await collection.bulk_write(sticky, ordered=False)
    return len(writes) - stale


class MeetingStore:
    """`one_on_ones`: `_id` = meeting id; snapshot fields + `version` + `removed`."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[ONE_ON_ONES]

    async def apply(self, writes: Sequence[VersionedWrite]) -> int:
        """One batch (one write per meeting); how many applied."""
        return await apply_versioned(self._collection, writes)

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

    async def manager_history(self, manager_id: str, now: datetime) -> dict[str, list[Document]]:
        """What the manager's cadence needs, by member e-mail, in two queries: every pair's
        meetings from 90 days back on, and each pair's last one held before that (so "last
        held" survives a quiet quarter). A pair with neither is not there."""
        base = {"manager_id": manager_id, **LIVE_OCCURRENCES}
        window_start = now - LOOK_BACK
        history: dict[str, list[Document]] = {}
        older = await self._collection.aggregate(
            [
                {
                    "$match": {
                        **base,
                        "start": {"$lt": window_start},
                        "end": {"$lte": now},
                        "is_cancelled": False,
                    }
                },
                {"$sort": {"start": -1}},
                {"$group": {"_id": "$member_email", "doc": {"$first": "$$ROOT"}}},
            ]
        )
        async for group in older:
            history[group["_id"]] = [group["doc"]]
        recent = self._collection.find({**base, "start": {"$gte": window_start}}).sort(
            [("start", 1), ("_id", 1)]
        )
        async for doc in recent:
            history.setdefault(doc["member_email"], []).append(doc)
        return history


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
        return await apply_versioned(self._collection, [write]) == 1

    async def get(self, connection_id: str) -> Document | None:
        return await self._collection.find_one({"_id": connection_id})
