"""The connection registry: one record per SMVue user's Outlook connection.

Written by the ingress (connect), the syncer (sync status, initial import, reauthorization
required, disconnect) and the writer (reauthorization required, a write refused: whoever
learns the connection's truth first tells the card), and read by the writer (can it
write?). Every change is one atomic
`find_one_and_update` that bumps the version and returns the new snapshot, which the caller
publishes — so snapshots on the connections topic are totally ordered by version.

A change whose event must not be lost (`connected`: without it the syncer never imports)
also writes an outbox entry in the same atomic update; the writer of the change clears it
once the event is published, and the ingress's outbox drainer publishes whatever stayed
undelivered (a failed publish, a crash in between): docs/conventions.md, "Effect order".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.contracts.connections import (
    ConnectedAccount,
    ConnectionError_,
    ConnectionSnapshot,
    ConnectionState,
    ImportProgress,
    ImportState,
    connection_id_for,
)
from shared.contracts.user_errors import UserErrorCode, user_message
from shared.mongo import Document, IndexSpec

COLLECTION = "connection_registry"
INDEXES = [
    IndexSpec(COLLECTION, [("user_id", 1)], unique=True),
    IndexSpec(COLLECTION, [("outbox.at", 1)], options={"sparse": True}),
]


@dataclass(frozen=True)
class Undelivered:
    """An event the registry promised (its kind and outbox id) and the snapshot now."""

    kind: str
    outbox_id: str
    snapshot: ConnectionSnapshot


def _now() -> datetime:
    return datetime.now(UTC)


def _error(code: UserErrorCode) -> dict[str, Any]:
    return {"code": code.value, "message": user_message(code), "at": _now()}


class ConnectionRegistry:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[COLLECTION]

    async def get(self, connection_id: str) -> ConnectionSnapshot | None:
        doc = await self._collection.find_one({"_id": connection_id})
        return None if doc is None else _snapshot(doc)

    async def for_user(self, user_id: str) -> ConnectionSnapshot | None:
        return await self.get(connection_id_for(user_id))

    async def connected(
        self,
        user_id: str,
        account: ConnectedAccount,
        granted_scopes: list[str],
        can_write: bool,
        *,
        outbox_id: str | None = None,
    ) -> ConnectionSnapshot:
        """Connected; with `outbox_id`, the `connected` event is owed until `delivered`."""
        now = _now()
        outbox = {"outbox": {"kind": "connected", "id": outbox_id, "at": now}} if outbox_id else {}
        return await self._change(
            user_id,
            {
                "state": ConnectionState.CONNECTED.value,
                "account": account.model_dump(mode="json"),
                "granted_scopes": granted_scopes,
                "can_write": can_write,
                "connected_at": now,
                "last_error": None,
                "last_connect_error": None,
                **outbox,
            },
        )

    async def delivered(self, connection_id: str, outbox_id: str) -> None:
        """The owed event is out: clear the outbox entry (unless a newer one replaced it)."""
        await self._collection.update_one(
            {"_id": connection_id, "outbox.id": outbox_id}, {"$unset": {"outbox": ""}}
        )

    async def claim_undelivered(
        self, older_than: datetime, limit: int = 100, now: datetime | None = None
    ) -> list[Undelivered]:
        """Entries owed for longer than `older_than`, each claimed for this drainer by
        moving its time forward (one atomic write each: two drainers never take one)."""
        moment = now or _now()
        found: list[Undelivered] = []
        for _ in range(limit):
            doc = await self._collection.find_one_and_update(
                {"outbox.at": {"$lt": older_than}},
                {"$set": {"outbox.at": moment}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                break
            outbox = doc["outbox"]
            found.append(Undelivered(str(outbox["kind"]), str(outbox["id"]), _snapshot(doc)))
        return found

    async def attempt_failed(self, user_id: str, code: UserErrorCode) -> ConnectionSnapshot:
        """Records the error on the card; an existing connection stays as it was."""
        error = _error(code)
        return await self._change(
            user_id,
            {"last_error": error, "last_connect_error": error},
            on_insert={"state": ConnectionState.FAILED.value, "can_write": False},
        )

    async def importing(self, connection_id: str, at: datetime) -> ConnectionSnapshot | None:
        """The initial import of a (re)connected calendar started."""
        progress = ImportProgress(state=ImportState.IMPORTING, started_at=at)
        return await self._change_existing(
            connection_id,
            {"initial_import": _stored(progress)},
            only_if_state=ConnectionState.CONNECTED,
        )

    async def imported(
        self, connection_id: str, started_at: datetime, events_seen: int, one_on_ones: int
    ) -> ConnectionSnapshot | None:
        """The initial import is done (it counts as a sync)."""
        now = _now()
        progress = ImportProgress(
            state=ImportState.READY,
            started_at=started_at,
            finished_at=now,
            duration_seconds=round(max((now - started_at).total_seconds(), 0.0), 3),
            events_seen=events_seen,
            one_on_ones=one_on_ones,
        )
        return await self._change_existing(
            connection_id,
            {
                "initial_import": _stored(progress),
                "last_sync_at": now,
                "last_error": None,
            },
            only_if_state=ConnectionState.CONNECTED,
        )

    async def write_refused(self, connection_id: str) -> ConnectionSnapshot | None:
        """Outlook refused a write (403): the grant doesn't allow scheduling (any more)."""
        return await self._change_existing(
            connection_id,
            {"can_write": False, "last_error": _error(UserErrorCode.INSUFFICIENT_PERMISSIONS)},
            only_if_state=ConnectionState.CONNECTED,
        )

    async def synced(self, connection_id: str, at: datetime) -> ConnectionSnapshot | None:
        return await self._change_existing(
            connection_id,
            {"last_sync_at": at, "last_error": None},
            only_if_state=ConnectionState.CONNECTED,
        )

    async def reauthorization_required(self, connection_id: str) -> ConnectionSnapshot | None:
        return await self._change_existing(
            connection_id,
            {
                "state": ConnectionState.REAUTHORIZATION_REQUIRED.value,
                "last_error": _error(UserErrorCode.REAUTHORIZATION_REQUIRED),
            },
            only_if_state=ConnectionState.CONNECTED,
        )

    async def failed(self, connection_id: str, code: UserErrorCode) -> ConnectionSnapshot | None:
        return await self._change_existing(connection_id, {"last_error": _error(code)})

    async def disconnected(self, connection_id: str) -> ConnectionSnapshot | None:
        return await self._change_existing(
            connection_id,
            {"state": ConnectionState.DISCONNECTED.value, "can_write": False, "last_error": None},
        )

    async def _change(
        self, user_id: str, fields: dict[str, Any], on_insert: dict[str, Any] | None = None
    ) -> ConnectionSnapshot:
        update: dict[str, Any] = {"$set": fields, "$inc": {"version": 1}}
        insert = {"user_id": user_id, **(on_insert or {})}
        insert = {k: v for k, v in insert.items() if k not in fields}
        if insert:
            update["$setOnInsert"] = insert
        doc = await self._collection.find_one_and_update(
            {"_id": connection_id_for(user_id)},
            update,
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # an upsert always returns the document
        return _snapshot(doc)

    async def _change_existing(
        self,
        connection_id: str,
        fields: dict[str, Any],
        only_if_state: ConnectionState | None = None,
    ) -> ConnectionSnapshot | None:
        query: dict[str, Any] = {"_id": connection_id}
        if only_if_state is not None:
            query["state"] = only_if_state.value
        doc = await self._collection.find_one_and_update(
            query,
            {"$set": fields, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _snapshot(doc)


def _stored(progress: ImportProgress) -> dict[str, Any]:
    return {**progress.model_dump(mode="python"), "state": progress.state.value}


def _snapshot(doc: Document) -> ConnectionSnapshot:
    error = doc.get("last_error")
    account = doc.get("account")
    return ConnectionSnapshot(
        connection_id=str(doc["_id"]),
        user_id=str(doc["user_id"]),
        state=ConnectionState(doc.get("state", ConnectionState.FAILED.value)),
        account=ConnectedAccount.model_validate(account) if account else None,
        granted_scopes=list(doc.get("granted_scopes") or []),
        can_write=bool(doc.get("can_write", False)),
        connected_at=doc.get("connected_at"),
        last_sync_at=doc.get("last_sync_at"),
        last_error=ConnectionError_.model_validate(error) if error else None,
        last_connect_error=(
            ConnectionError_.model_validate(doc["last_connect_error"])
            if doc.get("last_connect_error")
            else None
        ),
        initial_import=(
            ImportProgress.model_validate(doc["initial_import"])
            if doc.get("initial_import")
            else None
        ),
        version=int(doc.get("version", 0)),
    )
