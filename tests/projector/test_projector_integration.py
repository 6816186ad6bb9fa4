"""The projector against the real broker and MongoDB server: idempotent, order-tolerant,
replayable, merging the writer's and the syncer's views of one meeting, dead-lettering
what it can't read; and its query API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.projector.domain.merge import (
    connection_write,
    fold,
    meeting_tombstone,
    meeting_upsert,
)
from shared.contracts.connections import (
    ConnectionConnected,
    ConnectionSnapshot,
    ConnectionState,
    ConnectionStatusChanged,
    connection_id_for,
)
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
from shared.contracts.topics import MEETINGS
from shared.infra.endpoints import InfraEndpoints
from shared.settings import Settings
from tests.fixtures.services import (
    build,
    create_topics,
    free_port,
    isolated_settings,
    reading_client,
    running,
)
from tests.fixtures.waiting import eventually, publish

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

Doc = dict[str, Any]
T = TypeVar("T")
TOKEN = "projector-test-token"
CID = connection_id_for("ann")
NOW = datetime.now(UTC).replace(microsecond=0)  # MongoDB keeps milliseconds
SOON = NOW + timedelta(days=3)


def upsert(
    event_id: str,
    version: int,
    subject: str = "1:1",
    *,
    start: datetime = SOON,
    member: str = "Bob@Contoso.test",
    **changes: Any,
) -> MeetingUpserted:
    meeting_id = meeting_id_for(CID, event_id)
    fields: dict[str, Any] = {
        "meeting_id": meeting_id,
        "connection_id": CID,
        "manager_id": "ann",
        "member": Person(email=member, display_name=member.split("@")[0]),
        "member_id": member.split("@")[0].lower(),
        "graph_event_id": event_id,
        "event_type": "singleInstance",
        "subject": subject,
        "start": start,
        "end": start + timedelta(minutes=30),
        "source": MeetingSource.OUTLOOK,
        "version": version,
    }
    fields.update(changes)
    return MeetingUpserted.build(key=meeting_id, payload=MeetingSnapshot(**fields))


def from_writer(event_id: str, version: int, subject: str, command_id: str) -> MeetingUpserted:
    return upsert(
        event_id, version, subject, source=MeetingSource.SMVUE, created_in_smvue=True,
        smvue_command_id=command_id,
    )  # fmt: skip


def removal(event_id: str, version: int) -> MeetingRemoved:
    meeting_id = meeting_id_for(CID, event_id)
    return MeetingRemoved.build(
        key=meeting_id,
        payload=MeetingRemoval(
            meeting_id=meeting_id,
            connection_id=CID,
            manager_id="ann",
            graph_event_id=event_id,
            reason=RemovalReason.DELETED,
            version=version,
        ),
    )


def card(version: int, state: ConnectionState) -> ConnectionStatusChanged:
    return ConnectionStatusChanged.build(
        key=CID,
        payload=ConnectionSnapshot(
            connection_id=CID,
            user_id="ann",
            state=state,
            granted_scopes=["Calendars.ReadWrite", "offline_access"],
            can_write=True,
            version=version,
        ),
    )


@pytest.fixture
async def settings(infra: InfraEndpoints) -> Settings:
    settings = isolated_settings(
        infra.kafka_bootstrap_servers, infra.mongodb_uri, service_tokens=[TOKEN]
    )
    await create_topics(settings, partitions=2)
    return settings


@pytest.fixture
async def mongo(settings: Settings) -> AsyncIterator[AsyncMongoClient[Doc]]:
    """A client for reading what the projector wrote; the test's databases go afterwards."""
    async with reading_client(settings) as client:
        yield client


def db_of(mongo: AsyncMongoClient[Doc], settings: Settings) -> AsyncDatabase[Doc]:
    return mongo[settings.mongodb_database]


async def collection(db: AsyncDatabase[Doc], name: str) -> dict[str, Doc]:
    return {doc["_id"]: doc async for doc in db[name].find({})}


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real projector (production wiring) and an authenticated client of its API."""
    async with (
        running(build("projector", settings)),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.projector_port}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ) as client,
    ):
        yield client


async def dashboard(api: httpx.AsyncClient, **params: str) -> list[Doc]:
    response = await api.get("/v1/managers/ann/one-on-ones", params=params)
    assert response.status_code == 200, response.text
    items: list[Doc] = response.json()["one_on_ones"]
    return items


async def cadence_of(api: httpx.AsyncClient) -> Doc:
    """The cadence list, without the time it was computed at."""
    response = await api.get("/v1/managers/ann/cadence")
    assert response.status_code == 200, response.text
    body: Doc = response.json()
    return {k: v for k, v in body.items() if k != "computed_at"}


async def test_duplicates_out_of_order_and_replay_give_the_same_documents(
    settings: Settings, api: httpx.AsyncClient, mongo: AsyncMongoClient[Doc]
) -> None:
    meetings: list[MeetingUpserted | MeetingRemoved] = [
        upsert("e1", 10, "first"),
        upsert("e1", 30, "latest"),
        upsert("e1", 20, "stale"),  # older after newer
        upsert("e1", 30, "latest"),  # the same event twice
        removal("e2", 50),
        upsert("e2", 40, "removed before it arrived"),  # removal before the upsert
        upsert("e3", 5, "kept", start=SOON + timedelta(days=7)),
        upsert("e4", 1, "removed after it arrived"),
        removal("e4", 2),
    ]
    cards = [card(1, ConnectionState.CONNECTED), card(3, ConnectionState.FAILED)]
    cards.insert(1, card(2, ConnectionState.REAUTHORIZATION_REQUIRED))  # v3 then v2
    await publish(settings, *meetings, cards[0], cards[2], cards[1])

    # The documents are exactly what the pure merge rules say, whatever the order.
    expected = fold(
        meeting_upsert(m.payload)
        if isinstance(m, MeetingUpserted)
        else meeting_tombstone(m.payload)
        for m in meetings
    )
    db = db_of(mongo, settings)
    first = await eventually(lambda: collection(db, "one_on_ones"), lambda d: d == expected)
    assert first[meeting_id_for(CID, "e2")]["removed"] is True
    assert "subject" not in first[meeting_id_for(CID, "e2")]
    expected_card = fold(connection_write(c.payload, c.type) for c in cards)
    await eventually(lambda: collection(db, "connections"), lambda d: d == expected_card)
    assert [i["subject"] for i in await dashboard(api)] == ["latest", "kept"]

    # Replaying both topics from the start into a fresh database: the same documents.
    fresh = settings.model_copy(
        update={
            "mongodb_database": settings.mongodb_database + "_replay",
            "consumer_group_prefix": "replay",
            "projector_port": free_port(),
        }
    )
    # Cadence is computed at query time from those documents: nothing else is stored.
    cadence = await cadence_of(api)
    assert [m["member_email"] for m in cadence["members"]] == ["bob@contoso.test"]
    assert "cadence" not in await db.list_collection_names()
    async with (
        running(build("projector", fresh)),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{fresh.projector_port}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ) as replayed_api,
    ):
        replay = db_of(mongo, fresh)
        await eventually(lambda: collection(replay, "one_on_ones"), lambda d: d == first)
        await eventually(lambda: collection(replay, "connections"), lambda d: d == expected_card)
        assert await cadence_of(replayed_api) == cadence


async def test_writer_then_syncer_shows_one_meeting_created_in_smvue(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    await publish(
        settings,
        from_writer("w1", 100, "1:1 with Bob", "cmd-1"),
        upsert("w1", 200, "1:1 with Bob (seen in Outlook)"),
        # The other way round: the syncer's view first, the writer's event late and stale.
        upsert("w2", 300, "syncer first", start=SOON + timedelta(days=1)),
        from_writer("w2", 250, "writer late", "cmd-2"),
    )

    def merged(items: list[Doc]) -> bool:
        return [(i["subject"], i["created_in_smvue"]) for i in items] == [
            ("1:1 with Bob (seen in Outlook)", True),
            ("syncer first", True),
        ]

    items = await eventually(lambda: dashboard(api), merged)
    # Made by SMVue, whatever the syncer's later snapshot says (issue 9: source smvue).
    assert [(i["source"], i["smvue_command_id"]) for i in items] == [
        ("smvue", "cmd-1"),
        ("smvue", "cmd-2"),
    ]
    assert items[0]["meeting_id"] == meeting_id_for(CID, "w1")


async def dead_letters(settings: Settings, topic: str, expected: int) -> list[tuple[bytes, Doc]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[tuple[bytes, Doc]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(found) < expected and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    found.append((record.value or b"", headers))
    finally:
        await consumer.stop()
    return found


async def test_malformed_records_are_dead_lettered_and_the_next_one_still_applies(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    good = upsert("ok", 1, "after the bad ones")
    wrong_schema = json.dumps(
        {"type": "meeting.upserted", "key": good.key, "payload": {"meeting_id": good.key}}
    ).encode()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:  # the same key: one partition, the good record comes after both bad ones
        for value in (b"not json {", wrong_schema):
            await producer.send_and_wait(settings.topic(MEETINGS), value, key=good.key.encode())
    finally:
        await producer.stop()
    await publish(settings, good)

    await eventually(lambda: dashboard(api), lambda items: len(items) == 1)
    dead = await dead_letters(settings, settings.dead_letter_topic(MEETINGS), expected=2)
    assert [value for value, _ in dead] == [b"not json {", wrong_schema]
    for _, headers in dead:
        assert headers["x-dlq-reason"] == "invalid_record"
        assert headers["x-dlq-source-topic"] == settings.topic(MEETINGS)
    assert "json" in dead[0][1]["x-dlq-error"].lower()
    assert "payload" in dead[1][1]["x-dlq-error"]


async def test_query_api_auth_ranges_cadence_and_connection_card(
    settings: Settings, api: httpx.AsyncClient, mongo: AsyncMongoClient[Doc]
) -> None:
    ready = await api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"mongodb": True}
    base = str(api.base_url)
    async with httpx.AsyncClient(base_url=base) as anonymous:
        for path in ("/v1/managers/ann/one-on-ones", "/v1/managers/ann/cadence"):
            assert (await anonymous.get(path)).status_code == 401
        forged = await anonymous.get(
            "/v1/connections/ann", headers={"Authorization": "Bearer not-the-token"}
        )
        assert forged.status_code == 401
    backwards = await api.get(
        "/v1/managers/ann/one-on-ones",
        params={"from": "2030-02-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
    )
    assert backwards.status_code == 400 and "after" in backwards.json()["detail"]
    too_wide = await api.get(
        "/v1/managers/ann/one-on-ones",
        params={"from": "2030-01-01T00:00:00Z", "to": "2032-01-01T00:00:00Z"},
    )
    assert too_wide.status_code == 400 and "400 days" in too_wide.json()["detail"]
    garbage = await api.get("/v1/managers/ann/one-on-ones", params={"from": "yesterday"})
    assert garbage.status_code == 400
    assert (await api.get("/v1/connections/ann")).status_code == 404

    weekly = [
        upsert(f"b{days}", 1, "weekly", start=NOW - timedelta(days=days)) for days in (21, 14, 7)
    ]
    cancelled = upsert("b3", 1, "cancelled", start=NOW - timedelta(days=3), is_cancelled=True)
    lapsed = upsert("c40", 1, "long ago", start=NOW - timedelta(days=40), member="carol@x.test")
    await publish(
        settings,
        *weekly,
        cancelled,
        upsert("next", 1, "next", start=SOON),
        lapsed,
        ConnectionConnected.build(key=CID, payload=card(4, ConnectionState.CONNECTED).payload),
    )

    async def cadence() -> Doc:
        return await cadence_of(api)

    def complete(body: Doc) -> bool:  # every record the assertions below depend on applied
        members = body["members"]
        return [m["held_last_90_days"] for m in members] == [3, 1] and members[0][
            "next_scheduled"
        ] == SOON.isoformat().replace("+00:00", "Z")

    body = await eventually(cadence, complete)
    bob, carol = body["members"]
    assert bob == {
        "member_email": "bob@contoso.test",
        "member_name": "Bob",
        "member_id": "bob",
        "last_held": (NOW - timedelta(days=7)).isoformat().replace("+00:00", "Z"),
        "next_scheduled": SOON.isoformat().replace("+00:00", "Z"),
        "held_last_90_days": 3,
        "median_interval_days": 7.0,
        "overdue_horizon_days": 14.0,
        "overdue": False,
    }
    assert carol["member_email"] == "carol@x.test" and carol["next_scheduled"] is None
    assert carol["median_interval_days"] is None and carol["overdue"] is True
    assert "cadence" not in await db_of(mongo, settings).list_collection_names()

    # The dashboard over the last month: by start, the cancelled one listed and flagged.
    month = await dashboard(
        api,
        **{
            "from": (NOW - timedelta(days=30)).isoformat(),
            "to": (NOW + timedelta(days=30)).isoformat(),
        },
    )
    assert [(i["subject"], i["is_cancelled"]) for i in month] == [
        ("weekly", False),
        ("weekly", False),
        ("weekly", False),
        ("cancelled", True),
        ("next", False),
    ]
    connection = await eventually(
        lambda: api.get("/v1/connections/ann"), lambda r: r.status_code == 200
    )
    assert connection.json() == {
        "connection_id": CID,
        "user_id": "ann",
        "state": "connected",
        "account": None,
        "granted_scopes": ["Calendars.ReadWrite", "offline_access"],
        "can_write": True,
        "connected_at": None,
        "last_sync_at": None,
        "last_error": None,
        "last_connect_error": None,
        "initial_import": None,
        "syncing": True,
        "can_schedule": True,
        "notice": None,
        "action": None,
        "version": 4,
    }

    # Carol's only meeting removed: her pair leaves the cadence list.
    await publish(settings, removal("c40", 2))
    body = await eventually(cadence, lambda b: len(b["members"]) == 1)
    assert body["members"][0]["member_email"] == "bob@contoso.test"
