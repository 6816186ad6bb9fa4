"""Which database holds the read model: a pointer the projector follows, no restart needed
(ADR 0011).

The projector's home database (`settings.mongodb_database`) keeps a small control
collection. Its `pointer` document names the database that holds the read model
(`one_on_ones`, `connections`); with no pointer it is the home database itself.
`read-model rebuild --switch` moves the pointer with one conditional update.

Every projector instance follows it: `FollowingDatabase` is what the stores are built on;
each Mongo call goes to the database the pointer named when the call was made, and the
instance re-reads the pointer every `POLL_SECONDS`. After each read it writes a heartbeat
(`read_model_instances`: instance, database, seen_at), so the switch can wait until every
live instance reads and writes the new database before it catches up one last time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared.mongo import Document
from shared.observability.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)

CONTROL = "read_model_control"
INSTANCES = "read_model_instances"
POINTER_ID = "pointer"
POLL_SECONDS = 3.0  # two round trips per poll per instance; a switch waits ≤ one poll more
# An instance whose heartbeat is older than this is gone (stopped, or crashed).
FRESH_WITHIN = timedelta(seconds=15)


@dataclass(frozen=True)
class Pointer:
    database: str  # where the read model is now
    previous: str | None  # the one it replaced, kept until `read-model drop-old`
    switched_at: datetime | None
    home: str

    @property
    def is_home(self) -> bool:
        return self.database == self.home


class PointerMoved(Exception):
    """The pointer no longer names the database the switch expected (a concurrent switch)."""


class ReadModelControl:
    """The control documents in the home database: the pointer and the heartbeats."""

    def __init__(self, home: AsyncDatabase[Document]) -> None:
        self.home = home.name
        self._control: AsyncCollection[Document] = home[CONTROL]
        self._instances: AsyncCollection[Document] = home[INSTANCES]

    async def pointer(self) -> Pointer:
        doc = await self._control.find_one({"_id": POINTER_ID})
        if doc is None:
            return Pointer(self.home, None, None, self.home)
        return Pointer(doc["database"], doc.get("previous"), doc.get("switched_at"), self.home)

    async def switch(self, to: str, *, expected: str, now: datetime) -> Pointer:
        """Moves the pointer from `expected` to `to` in one conditional write."""
        try:
            await self._control.update_one(
                {"_id": POINTER_ID, "database": expected},
                {"$set": {"database": to, "previous": expected, "switched_at": now}},
                upsert=True,
            )
        except DuplicateKeyError:
            raise PointerMoved(f"the read model is no longer in {expected}") from None
        return await self.pointer()

    async def forget_previous(self, previous: str) -> None:
        await self._control.update_one(
            {"_id": POINTER_ID, "previous": previous}, {"$set": {"previous": None}}
        )

    async def heartbeat(self, instance: str, database: str, now: datetime) -> None:
        await self._instances.replace_one(
            {"_id": instance}, {"database": database, "seen_at": now}, upsert=True
        )

    async def leave(self, instance: str) -> None:
        await self._instances.delete_one({"_id": instance})

    async def live_instances(self, now: datetime) -> list[Document]:
        """Instances that reported within `FRESH_WITHIN`, oldest first."""
        cursor = self._instances.find({"seen_at": {"$gte": now - FRESH_WITHIN}}).sort("_id", 1)
        return [doc async for doc in cursor]

    # Rebuilds in progress (`rebuild:<name>` documents: skipped records, when).
    async def rebuild_state(self, name: str) -> Document | None:
        return await self._control.find_one({"_id": f"rebuild:{name}"})

    async def save_rebuild(self, name: str, fields: dict[str, Any]) -> None:
        await self._control.update_one(
            {"_id": f"rebuild:{name}"}, {"$set": {"name": name, **fields}}, upsert=True
        )

    async def rebuilds(self) -> list[Document]:
        cursor = self._control.find({"_id": {"$regex": "^rebuild:"}}).sort("_id", 1)
        return [doc async for doc in cursor]

    async def drop_rebuild(self, name: str) -> None:
        await self._control.delete_one({"_id": f"rebuild:{name}"})


def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class _FollowingCollection:
    """A collection of whichever database the pointer names at the moment of each call."""

    def __init__(self, db: FollowingDatabase, name: str) -> None:
        self._db = db
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._db.current[self._name], attribute)


class FollowingDatabase:
    """The read model's database as the pointer names it (see the module docstring).

    `stores()` is what the read-model stores are built on; `load()` must run before the
    first call (the service's on_start does it), `follow_forever` keeps it current.
    """

    def __init__(self, client: AsyncMongoClient[Document], home: str) -> None:
        self._client = client
        self._control = ReadModelControl(client[home])
        self._current: AsyncDatabase[Document] | None = None
        self.instance = instance_id()

    @property
    def current(self) -> AsyncDatabase[Document]:
        if self._current is None:
            raise RuntimeError("the read model's pointer is not loaded (run the on_start hooks)")
        return self._current

    def __getitem__(self, name: str) -> AsyncCollection[Document]:
        return cast(AsyncCollection[Document], _FollowingCollection(self, name))

    def stores(self) -> AsyncDatabase[Document]:
        """What `MeetingStore(...)` and the other stores take."""
        return cast(AsyncDatabase[Document], self)

    async def load(self) -> bool:
        """Reads the pointer; True when the read model moved to another database."""
        pointer = await self._control.pointer()
        moved = self._current is None or self._current.name != pointer.database
        if moved:
            if self._current is not None:
                log.info(
                    "read model switched", previous=self._current.name, database=pointer.database
                )
            self._current = self._client[pointer.database]
        return moved

    async def follow_forever(self, interval: float = POLL_SECONDS) -> None:
        """Re-reads the pointer and reports this instance's database, until cancelled."""
        try:
            while True:
                try:
                    await self.load()
                    await self._control.heartbeat(
                        self.instance, self.current.name, datetime.now(UTC)
                    )
                except PyMongoError as exc:  # Mongo away: keep the database we have
                    log.warning("read model pointer not read", error=type(exc).__name__)
                await asyncio.sleep(interval)
        finally:
            with contextlib.suppress(PyMongoError, RuntimeError):
                await asyncio.shield(self._control.leave(self.instance))


async def current_database(
    client: AsyncMongoClient[Document], settings: Settings
) -> AsyncDatabase[Document]:
    """The database holding the read model now (for tools reading it once)."""
    pointer = await ReadModelControl(client[settings.mongodb_database]).pointer()
    return client[pointer.database]
