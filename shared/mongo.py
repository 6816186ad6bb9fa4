"""MongoDB through PyMongo's async API, with each service's indexes created at start.

Works against any server speaking the MongoDB wire protocol (SecantusDB locally). No
multi-document transactions are relied on: writes are keyed, versioned, conditional upserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.settings import Settings

Document = dict[str, Any]

DUPLICATE_KEY = 11000  # the server's code for a write that would duplicate a unique key


def duplicate_keys_only(exc: BulkWriteError) -> int:
    """How many writes of a failed bulk write failed, when every failure was a duplicate
    key (and the write concern held); 0 when anything else failed too."""
    errors = exc.details.get("writeErrors", [])
    if exc.details.get("writeConcernErrors") or any(e.get("code") != DUPLICATE_KEY for e in errors):
        return 0
    return len(errors)


@dataclass(frozen=True)
class IndexSpec:
    collection: str
    keys: Sequence[tuple[str, int]]
    unique: bool = False
    name: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


def create_mongo_client(settings: Settings) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.mongodb_uri,
        appname="smvue-calendar-sync",
        tz_aware=True,
        serverSelectionTimeoutMS=10_000,
    )


def database(
    client: AsyncMongoClient[Document], settings: Settings, name: str | None = None
) -> AsyncDatabase[Document]:
    return client[name or settings.mongodb_database]


async def ensure_indexes(db: AsyncDatabase[Document], specs: Sequence[IndexSpec]) -> None:
    """Idempotent: creating an index that exists with the same options is a no-op."""
    for spec in specs:
        await db[spec.collection].create_index(
            list(spec.keys), unique=spec.unique, name=spec.name, **spec.options
        )


async def ping(client: AsyncMongoClient[Document]) -> bool:
    try:
        await client.admin.command("ping")
    except Exception:
        return False
    return True
