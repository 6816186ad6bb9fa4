"""The local server's two fixes (`shared/infra/secantus_server.py`, ADR 0002): a write whose
filter names an `_id` beside a top-level operator — what SecantusDB's own findAndModify
sends — picks its candidate by that `_id` instead of scanning the collection, and the
writes still match exactly what the whole filter matches, against the server as run; and
the profiler settings are read once per database until the `profile` command changes
them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, ReturnDocument
from secantus.storage import Storage

from shared.infra.endpoints import InfraEndpoints
from shared.infra.mongo_local import _server
from shared.infra.secantus_server import _candidates_by_id, _get_profile, _original, apply_fix

DB, COLL = "fix", "docs"


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    engine = Storage(str(tmp_path / "data"), enable_oplog=False, cache_size="32M")
    engine.insert(DB, COLL, [{"_id": f"d{n}", "a": n % 2, "lease": None} for n in range(50)])
    try:
        yield engine
    finally:
        engine.close()


def test_secantusdb_alone_scans_for_an_id_beside_an_operator(storage: Storage) -> None:
    """The upstream behaviour the fix is for (None = no index route: a full scan). When this
    fails, SecantusDB routes such filters itself: drop the fix."""
    assert _original(storage, DB, COLL, {"_id": "d3", "$and": [{"a": 1}]}) is None
    assert _original(storage, DB, COLL, {"_id": "d3"}) is not None


def test_the_fix_names_only_that_document(storage: Storage) -> None:
    by_id = _original(storage, DB, COLL, {"_id": "d3"})
    assert by_id is not None and len(by_id) == 1
    assert _candidates_by_id(storage, DB, COLL, {"_id": "d3", "$and": [{"a": 1}]}) == by_id
    assert _candidates_by_id(storage, DB, COLL, {"_id": "d3", "$or": [{"a": 0}]}) == by_id
    missing = _candidates_by_id(storage, DB, COLL, {"_id": "nope", "$and": [{"a": 1}]})
    assert missing == []


def test_what_the_fix_leaves_as_it_was(storage: Storage) -> None:
    """No `_id`, or a collation (an `_id` string may then match others): the server decides."""
    assert _candidates_by_id(storage, DB, COLL, {"$or": [{"a": 1}, {"lease": None}]}) is None
    with_collation = _candidates_by_id(
        storage, DB, COLL, {"_id": "d3", "$and": [{"a": 1}]}, collation={"locale": "en"}
    )
    assert with_collation == _original(
        storage, DB, COLL, {"_id": "d3", "$and": [{"a": 1}]}, collation={"locale": "en"}
    )


async def test_writes_beside_an_operator_match_exactly_what_the_filter_does(
    infra: InfraEndpoints,
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    coll = client[f"fix_{uuid.uuid4().hex[:8]}"]["docs"]
    try:
        await coll.insert_many([{"_id": f"d{n}", "a": n % 2, "n": 0} for n in range(20)])
        either = {"$or": [{"a": 1}, {"n": {"$gt": 5}}]}
        # d3 matches (a = 1), d4 does not (a = 0, n = 0): each write touches d3 only.
        took = await coll.find_one_and_update(
            {"_id": "d3", **either}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER
        )
        assert took == {"_id": "d3", "a": 1, "n": 1}
        assert await coll.find_one_and_update({"_id": "d4", **either}, {"$inc": {"n": 1}}) is None
        bump = {"$inc": {"n": 1}}
        assert (await coll.update_one({"_id": "d4", **either}, bump)).matched_count == 0
        assert (await coll.update_one({"_id": "d3", **either}, bump)).matched_count == 1
        assert (await coll.delete_one({"_id": "d4", **either})).deleted_count == 0
        assert await coll.find_one_and_delete({"_id": "d3", "$and": [{"n": 2}]}) is not None
        left = {d["_id"]: d["n"] async for d in coll.find({})}
        assert "d3" not in left and len(left) == 19 and set(left.values()) == {0}
    finally:
        await client.drop_database(coll.database.name)
        await client.close()


def test_the_local_default_runs_the_server_with_the_fix() -> None:
    assert _server()[1:] == ["-m", "shared.infra.secantus_server"]


def test_profiler_settings_are_cached_until_the_profile_command_changes_them(
    storage: Storage,
) -> None:
    """The second fix: read once per database, not per command; `set_profile` (the
    `profile` command) drops what was cached."""
    apply_fix()
    reads = 0
    real = _get_profile

    def counted(self: Storage, db: str) -> dict[str, Any]:
        nonlocal reads
        reads += 1
        settings: dict[str, Any] = real(self, db)
        return settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("shared.infra.secantus_server._get_profile", counted)
        assert [storage.get_profile(DB)["level"] for _ in range(3)] == [0, 0, 0]
        assert reads == 1
        storage.get_profile(DB)["level"] = 2  # a caller's copy, not the cache
        storage.set_profile(DB, level=1, slowms=5)
        assert storage.get_profile(DB) == {"level": 1, "slowms": 5, "sampleRate": 1.0}
        assert reads == 2
        assert storage.get_profile("other")["level"] == 0


async def test_the_profile_command_still_takes_effect(infra: InfraEndpoints) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    db = client[f"prof_{uuid.uuid4().hex[:8]}"]
    try:
        await db.docs.insert_one({"_id": 1})
        assert (await db.command({"profile": -1}))["was"] == 0
        await db.command({"profile": 2})
        await db.docs.find_one({"_id": 1})
        assert (await db.command({"profile": -1}))["was"] == 2
        assert await db["system.profile"].count_documents({}) >= 1
        await db.command({"profile": 0})
        assert (await db.command({"profile": -1}))["was"] == 0
    finally:
        await client.drop_database(db.name)
        await client.close()
