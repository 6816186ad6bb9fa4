"""The projector applies meeting records in batches (ADR 0007): a batch coalesced to one
write per meeting has the same effect as its records one by one, costs a fixed few MongoDB
round trips whatever its size (a large batch of new meetings one insert; of known ones the
insert tried, the upsert and a writer's sticky flag), and a replay of duplicated,
out-of-order records in any batching gives the same documents. Against the real server:
the store with a pymongo command listener, and the projector as deployed consuming Kafka."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from services.projector.adapters.read_model import INDEXES, ConnectionStore, MeetingStore
from services.projector.domain.merge import VersionedWrite, coalesce, fold
from services.projector.handlers import ProjectorHandlers, meeting_write
from shared.contracts.connections import connection_id_for
from shared.contracts.meetings import (
    MeetingRemoval,
    MeetingRemoved,
    MeetingSnapshot,
    MeetingSource,
    MeetingUpserted,
    Person,
    RemovalReason,
    meeting_id_for,
)
from shared.infra.endpoints import InfraEndpoints
from shared.mongo import ensure_indexes
from tests.fixtures.commands import Commands
from tests.fixtures.services import build, create_topics, isolated_settings, running
from tests.fixtures.waiting import eventually, publish

Doc = dict[str, Any]
Record = MeetingUpserted | MeetingRemoved
CID = connection_id_for("ann")
START = datetime(2030, 6, 3, 9, tzinfo=UTC)


def upserted(event: int, version: int, *, writer: bool = False) -> MeetingUpserted:
    meeting_id = meeting_id_for(CID, f"ev{event}")
    member = f"m{event % 7}@contoso.test"
    snapshot = MeetingSnapshot(
        meeting_id=meeting_id,
        connection_id=CID,
        manager_id="ann",
        member=Person(email=member, display_name=f"M{event % 7}"),
        member_id=f"m{event % 7}",
        graph_event_id=f"ev{event}",
        event_type="singleInstance",
        subject=f"1:1 #{event} v{version}",
        start=START + timedelta(days=event, minutes=version),
        end=START + timedelta(days=event, minutes=version + 30),
        source=MeetingSource.SMVUE if writer else MeetingSource.OUTLOOK,
        created_in_smvue=writer,
        smvue_command_id=f"cmd-{event}" if writer else None,
        version=version,
    )
    return MeetingUpserted.build(key=meeting_id, payload=snapshot)


def removed(event: int, version: int) -> MeetingRemoved:
    meeting_id = meeting_id_for(CID, f"ev{event}")
    removal = MeetingRemoval(
        meeting_id=meeting_id,
        connection_id=CID,
        manager_id="ann",
        graph_event_id=f"ev{event}",
        reason=RemovalReason.DELETED,
        version=version,
    )
    return MeetingRemoved.build(key=meeting_id, payload=removal)


def history(meetings: int, *, writers: bool = True) -> list[Record]:
    """Each meeting's records in version order: a few upserts (the writer's first for every
    fifth meeting), a removal for every fourth."""
    records: list[Record] = []
    for event in range(meetings):
        if writers and event % 5 == 0:
            records.append(upserted(event, 1, writer=True))
        records.extend(upserted(event, version) for version in (2, 3, 4))
        if event % 4 == 0:
            records.append(removed(event, 5))
    return records


def scrambled(records: list[Record], rng: random.Random) -> list[Record]:
    """Out of order, a third of them twice."""
    out = records + rng.sample(records, len(records) // 3)
    rng.shuffle(out)
    return out


def batches(records: list[Record], rng: random.Random) -> list[list[Record]]:
    out, at = [], 0
    while at < len(records):
        size = rng.randint(1, 60)
        out.append(records[at : at + size])
        at += size
    return out


# --- the pure rule ----------------------------------------------------------------------------


def test_a_coalesced_batch_has_the_effect_of_its_writes_in_order_on_any_stored_document() -> None:
    rng = random.Random(13)
    for _ in range(300):
        writes: list[VersionedWrite] = [meeting_write(r) for r in scrambled(history(4), rng)]
        cut = rng.randint(0, len(writes))
        stored, batch = writes[:cut], writes[cut:]
        assert fold([*stored, *coalesce(batch)]) == fold(writes)
        assert len(coalesce(batch)) == len({w.doc_id for w in batch})


# --- against the real server ------------------------------------------------------------------


@pytest.fixture
async def counted(infra: InfraEndpoints, mongo_db: str) -> AsyncIterator[tuple[Any, Commands]]:
    listener = Commands()
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        infra.mongodb_uri, event_listeners=[listener], tz_aware=True
    )
    databases: list[AsyncDatabase[Doc]] = []

    async def fresh(suffix: str) -> tuple[ProjectorHandlers, AsyncDatabase[Doc]]:
        db = client[f"{mongo_db}_{suffix}"]
        await ensure_indexes(db, INDEXES)
        databases.append(db)
        return ProjectorHandlers(MeetingStore(db), ConnectionStore(db)), db

    yield fresh, listener
    for db in databases:
        await client.drop_database(db.name)
    await client.close()


async def documents(db: AsyncDatabase[Doc]) -> dict[str, Doc]:
    return {doc["_id"]: doc async for doc in db.one_on_ones.find({})}


@pytest.mark.integration
async def test_a_batch_costs_a_fixed_few_round_trips_whatever_its_size(
    counted: tuple[Any, Commands],
) -> None:
    fresh, commands = counted
    handlers, db = await fresh("trips")
    rng = random.Random(1)
    outlook_only = scrambled(history(100, writers=False), rng)  # 100 meetings, ~530 records

    commands.measure()
    await handlers.on_meetings(outlook_only)
    # 100 new meetings (INSERT_FIRST_AT or more): inserted, in one command, no upsert
    assert commands.by_name() == {"insert": 1}, commands.by_name()

    commands.measure()
    await handlers.on_meetings(outlook_only)  # redelivered: every insert refused, all stale
    assert commands.by_name() == {"insert": 1, "update": 1}, commands.by_name()

    with_writers = scrambled(history(100), rng)
    commands.measure()
    await handlers.on_meetings(with_writers)
    # known meetings: the insert tried, the versioned upsert, the sticky flags
    assert commands.by_name() == {"insert": 1, "update": 2}, commands.by_name()

    few = scrambled(history(3, writers=False), rng)
    commands.measure()
    await handlers.on_meetings(few)  # a change's small batch: straight to the upsert
    assert commands.by_name() == {"update": 1}, commands.by_name()
    docs = await documents(db)
    assert len(docs) == 100
    assert docs == fold(meeting_write(r) for r in history(100))


@pytest.mark.integration
async def test_the_partitions_batches_at_once_share_one_round_trip(
    counted: tuple[Any, Commands],
) -> None:
    """At a few changes a second each partition's batch is one record: six of them within
    the linger are one bulk write (was one each), with the same documents."""
    fresh, commands = counted
    _, db = await fresh("grouped")
    handlers = ProjectorHandlers(MeetingStore(db), ConnectionStore(db), linger=0.05)
    records = history(6, writers=False)
    by_meeting: dict[str, list[Record]] = {}
    for record in records:
        by_meeting.setdefault(record.payload.meeting_id, []).append(record)

    async def partition(n: int, batch: list[Record]) -> None:
        await asyncio.sleep(0.005 * n)
        await handlers.on_meetings(batch)

    commands.measure()
    await asyncio.gather(*(partition(n, b) for n, b in enumerate(by_meeting.values())))
    assert commands.by_name() == {"update": 1}, commands.by_name()
    assert await documents(db) == fold(meeting_write(r) for r in records)


@pytest.mark.integration
async def test_duplicated_out_of_order_records_in_any_batching_give_the_same_documents(
    counted: tuple[Any, Commands],
) -> None:
    fresh, _ = counted
    records = history(60)
    expected = fold(meeting_write(r) for r in records)
    in_order, in_order_db = await fresh("in_order")
    for batch in batches(records, random.Random(2)):
        await in_order.on_meetings(batch)
    assert await documents(in_order_db) == expected

    rng = random.Random(3)
    scrambled_handlers, scrambled_db = await fresh("scrambled")
    for batch in batches(scrambled(records, rng), rng):
        await scrambled_handlers.on_meetings(batch)
    assert await documents(scrambled_db) == expected

    # A replay of the whole topic over what is there changes nothing.
    for batch in batches(scrambled(records, rng), rng):
        await in_order.on_meetings(batch)
    assert await documents(in_order_db) == expected


@pytest.mark.integration
@pytest.mark.timeout(90)
async def test_the_deployed_projector_applies_a_backlog_in_a_few_bulk_writes(
    infra: InfraEndpoints,
) -> None:
    settings = isolated_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri)
    await create_topics(settings, partitions=2)
    records = scrambled(history(80), random.Random(4))  # 80 meetings, ~500 records
    await publish(settings, *records)
    expected = fold(meeting_write(r) for r in history(80))

    probe: AsyncMongoClient[Doc] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    db = probe[settings.mongodb_database]
    # Registered process-wide: the projector's own client (made after this) reports to it;
    # the probe (made before) does not.
    commands = Commands(database=settings.mongodb_database)
    monitoring.register(commands)
    commands.measure()
    try:
        async with running(build("projector", settings)):
            await eventually(lambda: documents(db), lambda d: d == expected, timeout=60)
            sent = commands.by_name()
    finally:
        commands.counting = False
        await probe.drop_database(settings.mongodb_database)
        await probe.close()
    # No per-record reads, and far fewer writes than records (each poll brings a batch).
    assert sent["update"] <= 20, sent
    assert not {"find", "aggregate", "delete", "getMore"} & set(sent), sent
