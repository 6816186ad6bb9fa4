"""Private means private (issue 9 item 6): of a private event and of a meeting with three
people, nothing but their ids is kept — their subjects, and the third person's address,
are in no MongoDB collection, on no topic and in no log. An event with one person not on
the team is kept only as a keyed hash of that address; when the roster adds them, the
event is read from Graph again and becomes a 1:1 with its subject."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer
from bson import encode
from pymongo import AsyncMongoClient

from tests.fixtures.connect import connect_user
from tests.sync.world import World, event, subjects

pytestmark = pytest.mark.integration


def slot(days: int, hour: int) -> datetime:
    base = datetime.now(UTC) + timedelta(days=days)
    return base.replace(hour=hour, minute=0, second=0, microsecond=0)


async def everything_in_mongo(world: World) -> list[bytes]:
    """Every document of every collection of the test's database."""
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(world.settings.mongodb_uri)
    try:
        db = mongo[world.settings.mongodb_database]
        names = await db.list_collection_names()
        assert {"calendar_items", "one_on_ones", "sync_state"} <= set(names)
        return [encode(doc) for name in names async for doc in db[name].find({})]
    finally:
        await mongo.close()


async def everything_on_topics(world: World) -> list[bytes]:
    """Every record (key, value, headers) of every topic of the test's prefix, from the start."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=world.settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        topics = sorted(
            t for t in await consumer.topics() if t.startswith(world.settings.topic_prefix)
        )
        assert len(topics) > 5, topics
        consumer.subscribe(topics)
        seen: list[bytes] = []
        quiet = 0
        while quiet < 3:  # three empty polls in a row: everything was read
            batch = await consumer.getmany(timeout_ms=500)
            records = [r for rs in batch.values() for r in rs]
            quiet = 0 if records else quiet + 1
            for r in records:
                seen.append((r.key or b"") + (r.value or b""))
                seen.extend(value for _, value in r.headers)
        return seen
    finally:
        await consumer.stop()


async def test_private_and_three_person_meetings_leave_no_trace(
    world: World, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    tag = uuid.uuid4().hex[:12]
    private_marker, three_marker = f"PRIVATE-{tag}", f"THREE-{tag}"
    carol = f"carol-{tag}@fabrikam.test"  # the third person: her address is nowhere either
    dee = f"dee-{tag}@contoso.test"  # not on the team yet
    ann, bob = world.cloud.manager, world.cloud.member
    await world.roster("ann", bob.mail, version=1)
    body = f"BODY-{tag}"
    for made in (
        event(f"1:1 {private_marker}", slot(2, 9), [bob.mail], body, sensitivity="private"),
        event(f"planning {three_marker}", slot(2, 11), [bob.mail, carol], body),
        event("Ann / Bob", slot(3, 9), [bob.mail], body),
        event("Ann / Dee", slot(3, 11), [dee], body),
    ):
        await world.as_user("POST", "/me/events", ann.id, json=made)

    assert (await connect_user(world.emulator, world.settings, "ann", ann.mail)).status == (
        "connected"
    )
    await world.wait_read_model("ann", lambda d: subjects(d) == ["Ann / Bob"])
    items = await world.mongo_docs("calendar_items")
    # of the private event and the three-person meeting nothing at all, not even a marker
    assert sorted(str(d["kind"]) for d in items if "kind" in d) == ["candidate", "one_on_one"]
    assert len(items) == 2
    assert dee.encode() not in b"".join(encode(d) for d in items)

    # Dee joins the team: her meeting is read from Graph again (only a hash of her address
    # was kept) and becomes a 1:1, subject and all.
    world.emulator.state.request_log.clear()
    await world.roster("ann", bob.mail, dee, version=2)
    docs = await world.wait_read_model("ann", lambda d: subjects(d) == ["Ann / Bob", "Ann / Dee"])
    assert [d["member_email"] for d in docs if d["subject"] == "Ann / Dee"] == [dee]
    reads = [r.path for r in world.emulator.state.request_log.query(path_contains="/me/events/")]
    assert len(reads) == 1, reads  # that one event, not the calendar

    await asyncio.sleep(0.5)  # let the last records and log lines land
    stored, published = await everything_in_mongo(world), await everything_on_topics(world)
    for marker in (private_marker, three_marker, carol, body):
        assert not [m for m in stored if marker.encode() in m], marker
        assert not [r for r in published if marker.encode() in r], marker
    assert [m for m in published if b"Ann / Dee" in m]  # what the topics held was read
    captured = capfd.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert "sync round" in logs  # the services' logs were captured
    for marker in (private_marker, three_marker, carol, body):
        assert marker not in logs, marker
