"""The sync pipeline end to end: emulator (as Outlook) → real webhooks → ingress → Kafka →
syncer → meeting events, with the real broker and MongoDB server."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import encode
from pymongo import AsyncMongoClient

from services.syncer.settings import SyncerSettings
from shared.contracts.connections import ConnectionDisconnected
from shared.contracts.meetings import MeetingRemoved, MeetingUpserted
from shared.contracts.roster import Roster, RosterUpdated, TeamMember
from shared.contracts.topics import AUDIT, CONNECTIONS, MEETINGS, NOTIFICATIONS, SUBSCRIPTIONS
from shared.infra.endpoints import InfraEndpoints
from shared.messaging.broker import create_broker
from shared.messaging.publisher import KafkaPublisher
from shared.settings import Settings
from tests.fixtures.connect import Cloud, connect_user, connected_settings, seed_cloud, with_app
from tests.fixtures.emulator import RunningEmulator, running_emulator
from tests.fixtures.kafka import TopicReader
from tests.fixtures.services import build, create_topics, running

pytestmark = pytest.mark.integration

MARKER = f"BODY-MARKER-{uuid.uuid4().hex}"


@dataclass
class World:
    emulator: RunningEmulator
    settings: Settings
    cloud: Cloud

    async def as_user(self, method: str, path: str, user_id: str, **kw: Any) -> Any:
        token = self.emulator.state.identity.mint_access_token(user_id, "Calendars.ReadWrite")
        async with self.emulator.client() as graph:
            response = await graph.request(
                method, f"/v1.0{path}", headers={"Authorization": f"Bearer {token}"}, **kw
            )
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


@pytest.fixture
async def world(infra: InfraEndpoints) -> AsyncIterator[World]:
    async with running_emulator() as emulator:
        delivery = emulator.state.subscriptions.settings
        delivery.batch_window_seconds = 0.05
        delivery.retry_base_seconds = 0.05
        settings = connected_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri, emulator)
        cloud = seed_cloud(emulator, settings.oauth_redirect_uri)
        settings = with_app(settings, cloud)
        await create_topics(settings, partitions=2)
        syncer = build_syncer(settings)
        async with running(build("ingress", settings)), running(syncer):
            yield World(emulator, settings, cloud)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
        await mongo.drop_database(settings.mongodb_database)
        await mongo.close()


def build_syncer(settings: Settings) -> Any:
    from services.syncer.app import build_service

    return build_service(settings, SyncerSettings(tick_seconds=0.5, reconcile_seconds=3600))


def event(subject: str, start: datetime, attendees: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "body": {"contentType": "text", "content": f"private notes {MARKER}"},
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {
            "dateTime": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
        "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
        **extra,
    }


async def publish_roster(settings: Settings, manager: str, *emails: str, version: int = 1) -> None:
    broker = create_broker(settings, "test-backend")
    await broker.start()
    try:
        await KafkaPublisher(broker, settings).publish(
            RosterUpdated.build(
                key=manager,
                payload=Roster(
                    manager_id=manager,
                    members=[
                        TeamMember(member_id=e.split("@")[0], email=e, display_name=e.split("@")[0])
                        for e in emails
                    ],
                    version=version,
                    updated_at=datetime.now(UTC),
                ),
            )
        )
    finally:
        await broker.stop()


def upserted_subjects(messages: list[Any]) -> dict[str, str]:
    """meeting id → latest subject, dropping meetings whose latest event is a removal."""
    latest: dict[str, Any] = {}
    for message in messages:
        if isinstance(message, MeetingUpserted | MeetingRemoved):
            latest[message.payload.meeting_id] = message
    return {k: v.payload.subject for k, v in latest.items() if isinstance(v, MeetingUpserted)}


async def test_connect_imports_one_on_ones_and_follows_outlook_changes(world: World) -> None:
    ann, bob = world.cloud.manager, world.cloud.member
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    await publish_roster(world.settings, "ann", bob.mail)

    weekly = event(
        "Ann / Bob weekly",
        soon,
        [bob.mail],
        recurrence={
            "pattern": {
                "type": "weekly",
                "interval": 1,
                "daysOfWeek": [soon.strftime("%A").lower()],
            },
            "range": {
                "type": "numbered",
                "startDate": soon.date().isoformat(),
                "numberOfOccurrences": 4,
            },
        },
    )
    series = await world.as_user("POST", "/me/events", ann.id, json=weekly)
    occurrences = (
        await world.as_user(
            "GET",
            f"/me/events/{series['id']}/instances",
            ann.id,
            params={
                "startDateTime": soon.isoformat(),
                "endDateTime": (soon + timedelta(days=30)).isoformat(),
            },
        )
    )["value"]
    moved_to = soon + timedelta(days=7, hours=3)
    await world.as_user(
        "PATCH",
        f"/me/events/{occurrences[1]['id']}",
        ann.id,
        json={
            "start": {"dateTime": moved_to.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (moved_to + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
        },
    )
    await world.as_user("DELETE", f"/me/events/{occurrences[2]['id']}", ann.id)
    world.emulator.state.directory.add_user(world.cloud.tenant.id, "cy@contoso.test", "Cy")
    await world.as_user(
        "POST",
        "/me/events",
        ann.id,
        json=event("three people", soon, [bob.mail, "cy@contoso.test"]),
    )
    await world.as_user(
        "POST", "/me/events", ann.id, json=event("private", soon, [bob.mail], sensitivity="private")
    )
    await world.as_user(
        "POST", "/me/events", ann.id, json=event("all day", soon, [bob.mail], isAllDay=True)
    )
    await world.as_user(
        "POST", "/me/events", ann.id, json=event("not on the team", soon, ["cy@contoso.test"])
    )

    async with TopicReader(
        world.settings, MEETINGS, CONNECTIONS, SUBSCRIPTIONS, AUDIT, NOTIFICATIONS
    ) as reader:
        outcome = await connect_user(world.emulator, world.settings, "ann", ann.mail)
        assert outcome.status == "connected"
        await reader.wait_for(lambda m: len(upserted_subjects(m)) == 3)
        meetings = [m.payload for m in reader.of(MeetingUpserted)]
        assert {m.subject for m in meetings} == {"Ann / Bob weekly"}
        assert sorted(m.event_type for m in meetings) == ["exception", "occurrence", "occurrence"]
        assert all(m.member.email == bob.mail and m.manager_id == "ann" for m in meetings)
        assert any(m.start == moved_to for m in meetings)
        await reader.wait_for(lambda m: any(x.type == "subscription.activated" for x in m))

        # A new 1:1 in Outlook reaches the pipeline through a real notification.
        new = await world.as_user(
            "POST",
            "/me/events",
            ann.id,
            json=event("new 1:1", soon + timedelta(days=1), [bob.mail]),
        )
        await reader.wait_for(lambda m: "new 1:1" in upserted_subjects(m).values())
        await world.as_user(
            "PATCH", f"/me/events/{new['id']}", ann.id, json={"subject": "moved 1:1"}
        )
        await reader.wait_for(lambda m: "moved 1:1" in upserted_subjects(m).values())
        await world.as_user("DELETE", f"/me/events/{new['id']}", ann.id)
        await reader.wait_for(lambda m: "moved 1:1" not in upserted_subjects(m).values())
        assert any(x.type == "graph.change_notified" for x in reader.messages)

        # A roster change retracts, and restores, the member's meetings.
        await publish_roster(world.settings, "ann", version=2)
        await reader.wait_for(lambda m: upserted_subjects(m) == {})
        await publish_roster(world.settings, "ann", bob.mail, version=3)
        await reader.wait_for(lambda m: len(upserted_subjects(m)) == 3)

        # The body's marker is nowhere: not on any topic, not in the database.
        assert all(MARKER.encode() not in raw for raw in reader.raw)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(world.settings.mongodb_uri)
        db = mongo[world.settings.mongodb_database]
        for name in await db.list_collection_names():
            async for doc in db[name].find():
                assert MARKER.encode() not in encode(doc), name
        await mongo.close()

        # Disconnect: the subscription is deleted in Graph, the tokens are gone, meetings stay.
        subscriptions = world.emulator.state.subscriptions
        assert len(_active(world)) == 1
        import httpx

        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{world.settings.ingress_port}"
        ) as api:
            answer = await api.post(
                "/v1/connections/ann/disconnect",
                headers={"Authorization": "Bearer test-service-token"},
            )
        assert answer.status_code == 202
        await reader.wait_for(lambda m: any(isinstance(x, ConnectionDisconnected) for x in m))
        assert _active(world) == []
        assert not any(
            isinstance(x, MeetingRemoved)
            and x.occurred_at > datetime.now(UTC) - timedelta(seconds=2)
            for x in reader.messages[-3:]
        )
        del subscriptions


def _active(world: World) -> list[Any]:
    with contextlib.suppress(Exception):
        return list(world.emulator.state.subscriptions.subscriptions.values())  # type: ignore[attr-defined]
    return []
