"""The syncer's own state in MongoDB (no other service reads these collections).

- `sync_state`: per connection — mailbox addresses, deltaLink and its window, timers, the
  pending jobs (`pending.<job>`: when it was asked for), the commands waiting for a job's
  outcome (`commands`: Sync Now, disconnect), retry time and the worker's lease.
- `calendar_items`: per event, in one document (so a round reads and writes one
  collection): what re-evaluating the window after a roster change needs
  (`domain/kept.py`: a 1:1's allowed fields; of an event with one other person, a keyed
  hash of their address; of anything else, private ones included, nothing — never a
  body, and no subject, time or address of an event that is not a 1:1),
  and, once its meeting was published, `published`: the meeting id, its last version,
  content hash and whether it is live (a retracted one stays as a tombstone, so a re-add
  gets a newer version; an item left with neither is deleted).
- `rosters`: each manager's team, from the roster topic (and a copy in the connection's
  `sync_state`, `roster` + `roster_version`, which the rounds read).
- `subscriptions`: the Graph subscription per connection (id, expiry, clientState hash).
- `subscription_cleanup`: deletions that failed at disconnect, retried for a while.
- `syncer_leases`: leases on instance-wide chores (one instance retries cleanups).

Round trips are counted (tests/sync/test_store_round_trips.py): a round writes its
published versions and its calendar items as one bulk write, looks up only the items the
round's pages name (a full round: all of the connection's, by its index) in one query,
and a job costs one write to take it (lease + state) and one to finish it (which also
saves what the job returns — a round's deltaLink — and asks for the job that follows).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from pymongo import DeleteMany, DeleteOne, InsertOne, ReturnDocument, UpdateMany, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.mongo import Document, IndexSpec, duplicate_keys_only

INDEXES = [
    IndexSpec("calendar_items", [("connection_id", 1)]),
    IndexSpec("sync_state", [("user_id", 1)]),
    IndexSpec("sync_state", [("has_pending", 1), ("retry_at", 1)]),
    IndexSpec("subscriptions", [("expires_at", 1)]),
    IndexSpec("sync_state", [("active", 1), ("last_round_at", 1)]),
]


# No filter a job, a round or a Kafka record sends has a top-level `$or` (nor `$and`,
# `$nor`, `$expr`): SecantusDB, the local server, answers such a filter by scanning the
# whole collection even beside an `_id` (`python -m benchmarks.query_shapes`;
# docs/benchmarks.md), so each is one field's condition instead — `{"$not": {"$gte": t}}`
# is "unset, null or before t" — or an indexed query filtered here. Only the timer's two
# queries per tick (`due_for_round`, `maybe_stuck`) keep theirs: one scan of `sync_state`
# each per tick, not per connection.


def _not_after(moment: datetime) -> dict[str, Any]:
    """A field's condition: unset, None, or no later than `moment`."""
    return {"$not": {"$gt": moment}}


def _below(value: Any) -> dict[str, Any]:
    """A field's condition: unset, None, or less than `value`."""
    return {"$not": {"$gte": value}}


def _lease_free(now: datetime) -> dict[str, Any]:
    """Nobody's lease (released, never taken, or run out)."""
    return {"lease_until": _below(now)}


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
    async def request(
        self,
        connection_id: str,
        job: str,
        at: datetime,
        *,
        command: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """Durably records that `job` is wanted (asking again only moves the time); with
        `command`, that command waits for the job's outcome (in the same write)."""
        update: dict[str, Any] = {"$set": {f"pending.{job}": at, "has_pending": True, **fields}}
        if command is not None:
            update["$addToSet"] = {"commands": command}
        await self.db.sync_state.update_one({"_id": connection_id}, update, upsert=True)

    async def request_if_active(
        self,
        connection_id: str,
        job: str,
        at: datetime,
        *,
        unless_round_started_after: datetime | None = None,
        command: dict[str, Any] | None = None,
    ) -> bool:
        """Asks for `job` only if the connection is active (and, for a change notice, no
        round began after `unless_round_started_after`): one round trip, no read first.
        With `command`, that command waits for the job's outcome."""
        query: dict[str, Any] = {"_id": connection_id, "active": True}
        if unless_round_started_after is not None:
            query["round_started_at"] = _not_after(unless_round_started_after)
        update: dict[str, Any] = {"$set": {f"pending.{job}": at, "has_pending": True}}
        if command is not None:
            update["$addToSet"] = {"commands": command}
        result = await self.db.sync_state.update_one(query, update)
        return result.matched_count == 1

    async def request_and_take(
        self,
        connection_id: str,
        job: str,
        at: datetime,
        owner: str,
        ttl: timedelta,
        *,
        unless_round_started_after: datetime | None = None,
        command: dict[str, Any] | None = None,
    ) -> Document | None:
        """`request_if_active` and `take` in one round trip, for a connection whose lease
        is free: records the job, takes the lease (a round also marks its start) and returns
        the state. None when the connection isn't active, a round began after
        `unless_round_started_after`, or a lease is held (another instance's, or this
        one's: then a worker here has it) — the caller then asks with `request_if_active`
        (whose answer decides)."""
        query: dict[str, Any] = {"_id": connection_id, "active": True, **_lease_free(at)}
        if unless_round_started_after is not None:
            query["round_started_at"] = _not_after(unless_round_started_after)
        taken: dict[str, Any] = {
            f"pending.{job}": at,
            "has_pending": True,
            "lease_owner": owner,
            "lease_until": at + ttl,
        }
        if job == "round":
            taken["round_started_at"] = at
        update: dict[str, Any] = {"$set": taken}
        if command is not None:
            update["$addToSet"] = {"commands": command}
        return await self.db.sync_state.find_one_and_update(
            query,
            update,
            return_document=ReturnDocument.AFTER,
        )

    async def forget_commands(self, connection_id: str, command_ids: list[str]) -> None:
        """The commands were answered: they no longer wait for a job."""
        await self.db.sync_state.update_one(
            {"_id": connection_id}, {"$pull": {"commands": {"id": {"$in": command_ids}}}}
        )

    async def request_many(self, connection_ids: list[str], job: str, at: datetime) -> None:
        if connection_ids:
            await self.db.sync_state.update_many(
                {"_id": {"$in": connection_ids}},
                {"$set": {f"pending.{job}": at, "has_pending": True}},
            )

    async def take(
        self, connection_id: str, owner: str, now: datetime, ttl: timedelta, *, ours: bool = False
    ) -> Document | None:
        """Takes (or renews) the worker's lease and returns the state, in one round trip
        when the lease is free — or, with `ours`, when this instance holds it already (a
        second try asks the other way round). A pending delta round is marked as begun in
        the same write (`round_started_at`, what coalesces change notices: it is no later
        than the round's Graph query; an update pipeline sets it only if `pending.round`
        is there). None if another instance holds the lease (or there is no state)."""
        no_round = {"$eq": [{"$type": "$pending.round"}, "missing"]}
        update = [
            {
                "$set": {
                    "lease_owner": owner,
                    "lease_until": now + ttl,
                    "round_started_at": {"$cond": [no_round, "$round_started_at", now]},
                }
            }
        ]
        free, held = _lease_free(now), {"lease_owner": owner}
        for condition in (held, free) if ours else (free, held):
            taken = await self.db.sync_state.find_one_and_update(
                {"_id": connection_id, **condition}, update, return_document=ReturnDocument.AFTER
            )
            if taken is not None:
                return taken
        return None

    async def finish(
        self,
        connection_id: str,
        job: str,
        requested_at: Any,
        owner: str,
        now: datetime,
        ttl: timedelta,
        *,
        save: dict[str, Any] | None = None,
        then: str | None = None,
        asked_again: bool = False,
    ) -> Document | None:
        """Clears `job` unless it was asked for again while it ran, saves the job's `save`
        fields (top-level ones), asks for `then` (the job that follows it) and resets the
        retry count, in one write. If nothing is left pending, that releases our lease —
        which also stops the timer waking the connection — and None is returned; otherwise
        our lease is renewed and the state returned. A lease another instance took
        meanwhile is left as it is (the state is returned: not ours).

        The usual finish — nothing asked for since — is a plain conditional update; when
        it doesn't match, or with `then` or `asked_again` (the worker heard of a new ask
        while the job ran), an update pipeline that also returns the state: one write
        either way, two when an ask came by another instance unheard."""
        fields = {**(save or {}), "failures": 0, "retry_at": None}
        if then is None and not asked_again:
            released = await self.db.sync_state.update_one(
                {"_id": connection_id, "lease_owner": owner, "pending": {job: requested_at}},
                {
                    "$set": {
                        **fields,
                        "pending": {},
                        "has_pending": False,
                        "lease_owner": None,
                        "lease_until": None,
                    }
                },
            )
            if released.matched_count:
                return None
        ask = {then: {"$literal": now}} if then is not None else {}
        left = {  # `pending` without `job` as it was asked for when the job was taken
            "$filter": {
                "input": {"$objectToArray": {"$ifNull": ["$pending", {}]}},
                "cond": {
                    "$not": [
                        {
                            "$and": [
                                {"$eq": ["$$this.k", job]},
                                {"$eq": ["$$this.v", {"$literal": requested_at}]},
                            ]
                        }
                    ]
                },
            }
        }
        ours = {"$eq": ["$lease_owner", owner]}
        pipeline: list[dict[str, Any]] = [
            {
                "$set": {
                    **{name: {"$literal": value} for name, value in fields.items()},
                    "pending": {"$mergeObjects": [{"$arrayToObject": left}, ask]},
                }
            },
            {"$set": {"has_pending": {"$ne": ["$pending", {}]}}},
            {
                "$set": {
                    "lease_until": {
                        "$cond": [
                            ours,
                            {"$cond": ["$has_pending", {"$literal": now + ttl}, None]},
                            "$lease_until",
                        ]
                    },
                    "lease_owner": {
                        "$cond": [
                            {"$and": [ours, {"$not": ["$has_pending"]}]},
                            None,
                            "$lease_owner",
                        ]
                    },
                }
            },
        ]
        doc = await self.db.sync_state.find_one_and_update(
            {"_id": connection_id}, pipeline, return_document=ReturnDocument.AFTER
        )
        if doc is None or (not doc.get("has_pending") and doc.get("lease_owner") is None):
            return None  # nothing left to do (the lease released, if it was ours)
        return doc

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

    async def with_pending(self, now: datetime, limit: int = 0) -> list[str]:
        """Connections with work waiting whose retry time (if any) has come (at most
        `limit` of them when given: the timer works in bounded steps)."""
        cursor = self.db.sync_state.find(
            {"has_pending": True, "retry_at": _not_after(now)},
            {"_id": 1},
            limit=limit,
        )
        return [str(doc["_id"]) async for doc in cursor]

    async def due_for_round(
        self, last_round_before: datetime, window_start: datetime, limit: int
    ) -> list[str]:
        """Active connections whose last round is older than `last_round_before` or whose
        window must slide to `window_start`, without a round pending (ids only, bounded)."""
        cursor = self.db.sync_state.find(
            {
                "active": True,
                "pending.round": {"$exists": False},
                "$or": [
                    {"last_round_at": {"$lt": last_round_before}},
                    {"window_start": {"$nin": [None, window_start]}},
                ],
            },
            {"_id": 1},
            limit=limit,
        )
        return [str(doc["_id"]) async for doc in cursor]

    async def maybe_stuck(
        self,
        *,
        import_asked_before: datetime,
        last_round_before: datetime,
        subscription_expired: list[str],
        limit: int,
    ) -> list[Document]:
        """The connections the watchdog must look at (`domain/watchdog.py` decides): an
        import asked for before `import_asked_before`, or active with no round since
        `last_round_before` or with an expired subscription. One bounded query."""
        cursor = self.db.sync_state.find(
            {
                "$or": [
                    {"pending.connect": {"$lt": import_asked_before}},
                    {"active": True, "last_round_at": {"$lt": last_round_before}},
                    {"active": True, "_id": {"$in": subscription_expired}},
                ]
            },
            limit=limit,
        )
        return [doc async for doc in cursor]

    async def needing_renewal(self, connection_ids: list[str]) -> list[str]:
        """Of `connection_ids`: the active ones without a renewal pending."""
        cursor = self.db.sync_state.find(
            {"_id": {"$in": connection_ids}, "active": True, "pending.renew": {"$exists": False}},
            {"_id": 1},
        )
        return [str(doc["_id"]) async for doc in cursor]

    async def lease(self, connection_id: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        """Renews this instance's lease on the connection (one worker per connection across
        syncer instances): False once another instance took it over."""
        result = await self.db.sync_state.update_one(
            {"_id": connection_id, "lease_owner": owner},
            {"$set": {"lease_until": now + ttl}},
        )
        return result.matched_count == 1

    async def release(self, connection_id: str, owner: str) -> None:
        """Frees the lease; with nothing left pending, the timer stops waking it too."""
        idle = await self.db.sync_state.update_one(
            {"_id": connection_id, "lease_owner": owner, "pending": {}},
            {"$set": {"lease_owner": None, "lease_until": None, "has_pending": False}},
        )
        if not idle.matched_count:
            await self._release(connection_id, owner)

    async def chore_lease(self, name: str, owner: str, now: datetime, ttl: timedelta) -> bool:
        """An instance-wide chore (e.g. retrying cleanups) runs on one instance at a time:
        the holder renews its lease in one write; another instance takes it once it ran
        out (or creates it)."""
        renewed = await self.db.syncer_leases.update_one(
            {"_id": name, "lease_owner": owner}, {"$set": {"lease_until": now + ttl}}
        )
        if renewed.matched_count:
            return True
        try:
            await self.db.syncer_leases.update_one(
                {"_id": name, **_lease_free(now)},
                {"$set": {"lease_owner": owner, "lease_until": now + ttl}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # held by another instance (the upsert found no free lease)
        return True

    async def _release(self, connection_id: str, owner: str) -> None:
        await self.db.sync_state.update_one(
            {"_id": connection_id, "lease_owner": owner},
            {"$set": {"lease_owner": None, "lease_until": None}},
        )

    # calendar items (and what was published of each) --------------------------------------
    async def entries(
        self, connection_id: str, event_ids: list[str], *, every: bool = False
    ) -> dict[str, Document]:
        """The connection's calendar items of `event_ids` — or, with `every`, all of the
        connection's items (a full round: it lists nearly all of them anyway, and looks at
        the live ones it did not list) — by event id: what is kept of each and what was
        published of it. One round trip, by `_id` or by the `connection_id` index."""
        query = (
            {"connection_id": connection_id}
            if every
            else {"_id": {"$in": [_item_id(connection_id, e) for e in event_ids]}}
        )
        return {str(doc["event_id"]): doc async for doc in self.db.calendar_items.find(query)}

    async def items(self, connection_id: str) -> list[Document]:
        """Every calendar item the connection keeps (a roster re-evaluation reads them)."""
        cursor = self.db.calendar_items.find({"connection_id": connection_id})
        return [d async for d in cursor if "kind" in d or "event" in d]

    async def forget_meetings(self, connection_id: str) -> None:
        """Stops following what was published for the connection (no retraction: consumers
        keep it as it is) and drops its kept items."""
        await self.db.calendar_items.delete_many({"connection_id": connection_id})

    async def drop_items(self, connection_id: str) -> None:
        """Drops what the connection keeps of its events (a disconnect); what was published
        of each stays (a reconnect's versions must outrank it)."""
        await self.db.calendar_items.bulk_write(
            [
                UpdateMany({"connection_id": connection_id}, {"$unset": _KEPT_UNSET}),
                DeleteMany({"connection_id": connection_id, "published": {"$exists": False}}),
            ]
        )

    async def apply_round(
        self,
        connection_id: str,
        *,
        published: list[tuple[str, str, int, str | None, bool]],
        put_items: dict[str, dict[str, Any]],
        drop_items: set[str],
        left_out: Collection[str] = (),
        forget: Collection[str] = (),
        absent: Collection[str] = (),
    ) -> None:
        """A round's effects in one ordered bulk write on `calendar_items` (pymongo sends
        one command per run of one kind: a full round's clean-up of what it did not list
        — a delete and an update, when there is any —, the inserts, the updates, the
        deletes of what they left empty — an import's is 1 command): the published
        versions (meeting id, event id, version, hash or None for a tombstone, kept as
        cancelled); the kept items (put, drop, and `left_out`: the connection's items a full
        round found but did not list, whose kept form goes — the cancelled 1:1s kept as
        history stay); `forget`: meetings no longer followed (consumers keep them as they
        are). An item without a kept form or a publication is deleted.

        `absent`: event ids the round looked up and found no item for (an import: all of
        them). Their items are inserted, not upserted: SecantusDB inserts a document in
        about a third of an upsert's time (`docs/benchmarks.md`), MongoDB in about the
        same. Should one exist by now after all (a worker that had lost the connection's
        lease wrote it), the insert's duplicate key stops the ordered write and the whole
        write is done again as upserts — every part of it converges when repeated."""
        sets: dict[str, dict[str, Any]] = {}
        unsets: dict[str, dict[str, str]] = {}
        for meeting_id, event_id, version, digest, cancelled in published:
            sets.setdefault(event_id, {})["published"] = _publication(
                meeting_id, version, digest, cancelled
            )
        for event_id, kept in put_items.items():
            sets.setdefault(event_id, {}).update(kept)
            unsets[event_id] = {k: "" for k in _KEPT_FIELDS if k not in kept}
        # An item the lookup found absent has nothing to drop (an import's events of which
        # nothing is kept cost no write at all).
        dropped = sorted(drop_items - set(put_items) - set(absent))
        for event_id in dropped:
            unsets[event_id] = _KEPT_UNSET
        inserts: list[Any] = []
        as_upserts: list[Any] = []  # the same items' upserts, should an insert be refused
        updates: list[Any] = []
        for event_id in sorted(set(sets) | set(unsets)):
            update: dict[str, Any] = {}
            if event_id in sets:
                update["$set"] = {
                    "connection_id": connection_id,
                    "event_id": event_id,
                    **sets[event_id],
                }
            if unsets.get(event_id):
                update["$unset"] = unsets[event_id]
            item_id = _item_id(connection_id, event_id)
            upsert = UpdateOne({"_id": item_id}, update, upsert=event_id in sets)
            if event_id in absent and event_id in sets:
                inserts.append(InsertOne({"_id": item_id, **update["$set"]}))
                as_upserts.append(upsert)
            else:
                updates.append(upsert)
        deletes: list[Any] = [
            DeleteOne({"_id": _item_id(connection_id, e), "published": {"$exists": False}})
            for e in dropped
        ]
        first: list[Any] = []
        if left_out:
            # The clean-up of what the full round did not list comes first: it deletes the
            # items that would be left with neither a kept form nor a publication and takes
            # the kept form off the others, the cancelled 1:1s kept as history. An item a
            # write below publishes again is written by an upsert, so it is the same
            # document either way (nothing but its kept form and publication).
            others = {"_id": {"$in": sorted(_item_id(connection_id, e) for e in left_out)}}
            first.append(
                DeleteMany(
                    {**others, "kind": {"$ne": "cancelled"}, "published": {"$exists": False}}
                )
            )
            first.append(
                UpdateMany(
                    {**others, "kind": {"$nin": [None, "cancelled"]}}, {"$unset": _KEPT_UNSET}
                )
            )
        if forget:
            deletes.append(
                DeleteMany(
                    {
                        "connection_id": connection_id,
                        "published.meeting_id": {"$in": sorted(forget)},
                    }
                )
            )
        writes = [*first, *inserts, *updates, *deletes]
        if not writes:
            return
        try:
            # Ordered: the deletes of what the writes leave empty run after them.
            await self.db.calendar_items.bulk_write(writes, ordered=True)
        except BulkWriteError as exc:
            if not inserts or not duplicate_keys_only(exc):
                raise
            writes = [*first, *as_upserts, *updates, *deletes]
            await self.db.calendar_items.bulk_write(writes, ordered=True)

    async def migrate_published(self, batch: int = 1000) -> int:
        """Moves what an earlier version kept in a `published` collection into the
        calendar items, the newer version winning; safe to run again and from any point
        (a moved document is deleted only after its item is written). Returns how many
        were moved."""
        moved = 0
        while docs := [d async for d in self.db.published.find({}, limit=batch)]:
            ops: list[Any] = []
            for d in docs:
                cid, event_id = str(d["connection_id"]), str(d["event_id"])
                publication = _publication(
                    str(d["_id"]), int(d.get("version", 0)), d.get("hash"), bool(d.get("cancelled"))
                )
                item = {"_id": _item_id(cid, event_id)}
                ops.append(
                    UpdateOne(
                        item,
                        {"$setOnInsert": {"connection_id": cid, "event_id": event_id}},
                        upsert=True,
                    )
                )
                older = {"published.version": _below(publication["version"])}
                ops.append(UpdateOne({**item, **older}, {"$set": {"published": publication}}))
            await self.db.calendar_items.bulk_write(ops, ordered=True)
            await self.db.published.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
            moved += len(docs)
        return moved

    # rosters ----------------------------------------------------------------------------
    async def roster(self, manager_id: str) -> Document | None:
        return await self.db.rosters.find_one({"_id": manager_id})

    async def put_roster(
        self, manager_id: str, members: list[dict[str, Any]], version: int
    ) -> bool:
        """Stores the roster unless a newer (or the same) version is already there; True if
        stored. One conditional upsert: a DuplicateKeyError means "stale, drop it"."""
        try:
            result = await self.db.rosters.update_one(
                {"_id": manager_id, "version": {"$lt": version}},
                {"$set": {"members": members, "version": version}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return result.modified_count == 1 or result.upserted_id is not None

    async def copy_roster(
        self, connection_id: str, members: list[dict[str, Any]], version: int
    ) -> None:
        """Keeps a copy of the manager's roster in the connection's sync state (so a round,
        which has the state from taking its lease, needs no roster read), unless the state
        has a newer copy or doesn't exist. Written after `put_roster`: a state's copy is
        never newer than `rosters`, and once the state exists every newer roster reaches it."""
        await self.db.sync_state.update_one(
            {"_id": connection_id, "roster_version": _below(version)},
            {"$set": {"roster": members, "roster_version": version}},
        )

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

    async def subscriptions_of(self, connection_ids: list[str]) -> dict[str, Document]:
        """The subscriptions of `connection_ids` (one query; none when the list is empty)."""
        if not connection_ids:
            return {}
        cursor = self.db.subscriptions.find({"_id": {"$in": connection_ids}})
        return {str(doc["_id"]): doc async for doc in cursor}

    async def drop_subscription(self, connection_id: str) -> None:
        await self.db.subscriptions.delete_one({"_id": connection_id})

    async def expiring_subscriptions(self, before: datetime, limit: int = 0) -> list[Document]:
        cursor = self.db.subscriptions.find({"expires_at": {"$lt": before}}, limit=limit)
        return [d async for d in cursor]

    # cleanup ----------------------------------------------------------------------------
    async def put_cleanup(self, subscription_id: str, doc: dict[str, Any]) -> None:
        await self.db.subscription_cleanup.replace_one({"_id": subscription_id}, doc, upsert=True)

    async def cleanups(self, limit: int = 0) -> list[Document]:
        return [d async for d in self.db.subscription_cleanup.find({}, limit=limit)]

    async def drop_cleanup(self, subscription_id: str) -> None:
        await self.db.subscription_cleanup.delete_one({"_id": subscription_id})


_KEPT_FIELDS = ("kind", "event", "other")  # `domain/kept.py`'s forms
_KEPT_UNSET = {field: "" for field in _KEPT_FIELDS}


def _item_id(connection_id: str, event_id: str) -> str:
    return f"{connection_id}|{event_id}"


def _publication(
    meeting_id: str, version: int, content_hash: str | None, cancelled: bool = False
) -> Document:
    """What consumers hold of the event's meeting: a live snapshot (with its hash) or a
    tombstone; kept as a tombstone so a re-add gets a newer version."""
    return {
        "meeting_id": meeting_id,
        "version": version,
        "hash": content_hash,
        "live": content_hash is not None,
        "cancelled": cancelled,
    }
