"""Helpers for sync integration tests: act as the user in "Outlook", drive the emulator's
control API, publish backend records, and read the projector's read model."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from shared.contracts.commands import ConnectionCommandRequest, SyncNow
from shared.contracts.connections import connection_id_for
from shared.contracts.envelope import Envelope
from shared.contracts.roster import Roster, RosterUpdated, TeamMember
from shared.contracts.topics import TopicSpec
from shared.messaging.broker import create_broker
from shared.messaging.publisher import KafkaPublisher
from shared.settings import Settings
from tests.fixtures.connect import Cloud
from tests.fixtures.emulator import RunningEmulator
from tests.fixtures.waiting import eventually

Doc = dict[str, Any]


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def event(
    subject: str, start: datetime, attendees: list[str], marker: str, **extra: Any
) -> dict[str, Any]:
    """An Outlook event whose body carries `marker` (it must never travel further)."""
    return {
        "subject": subject,
        "body": {"contentType": "text", "content": f"private notes {marker}"},
        "start": {"dateTime": utc_text(start), "timeZone": "UTC"},
        "end": {"dateTime": utc_text(start + timedelta(minutes=30)), "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
        **extra,
    }


@dataclass
class World:
    emulator: RunningEmulator
    settings: Settings
    cloud: Cloud

    async def as_user(self, method: str, path: str, user_id: str, **kw: Any) -> Any:
        """Acts as the person in Outlook: a token minted for them, the normal Graph API.
        Ids are immutable ids, the form the system reads (so tests can compare them)."""
        token = self.emulator.state.identity.mint_access_token(user_id, "Calendars.ReadWrite")
        headers = {"Authorization": f"Bearer {token}", "Prefer": 'IdType="ImmutableId"'}
        async with self.emulator.client() as graph:
            response = await graph.request(method, f"/v1.0{path}", headers=headers, **kw)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def control(self, method: str, path: str, **kw: Any) -> Any:
        async with self.emulator.client() as client:
            response = await client.request(method, f"/_emulator{path}", **kw)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    async def publish(self, *envelopes: Envelope) -> None:
        """As the SMVue backend would: straight onto the topics."""
        broker = create_broker(self.settings, "test-backend")
        await broker.start()
        try:
            await KafkaPublisher(broker, self.settings).publish_all(list(envelopes))
        finally:
            await broker.stop()

    async def roster(self, manager: str, *emails: str, version: int) -> None:
        members = [
            TeamMember(member_id=e.split("@")[0], email=e, display_name=e.split("@")[0])
            for e in emails
        ]
        payload = Roster(
            manager_id=manager, members=members, version=version, updated_at=datetime.now(UTC)
        )
        await self.publish(RosterUpdated.build(key=manager, payload=payload))

    async def sync_now(self, user_id: str) -> None:
        request = ConnectionCommandRequest(
            command_id=f"sync-{datetime.now(UTC).timestamp()}",
            user_id=user_id,
            requested_at=datetime.now(UTC),
        )
        await self.publish(SyncNow.build(key=connection_id_for(user_id), payload=request))

    async def mongo_docs(self, collection: str, query: Doc | None = None) -> list[Doc]:
        mongo: AsyncMongoClient[Doc] = AsyncMongoClient(self.settings.mongodb_uri, tz_aware=True)
        try:
            db = mongo[self.settings.mongodb_database]
            return [doc async for doc in db[collection].find(query or {})]
        finally:
            await mongo.close()

    async def idle(self, user_id: str, timeout: float = 30) -> None:
        """Waits until the syncer has nothing pending for the person's connection: the
        connect job's import, subscription and follow-up delta round are all done, so
        what changes in Outlook from here on reaches the syncer only by a notification
        (or a Sync Now)."""
        query = {"_id": connection_id_for(user_id)}
        await eventually(
            lambda: self.mongo_docs("sync_state", query),
            lambda states: bool(states) and states[0].get("has_pending") is False,
            timeout=timeout,
        )

    async def one_on_ones(self, manager: str) -> list[Doc]:
        """The projector's read model: the manager's live 1:1s, by start."""
        docs = await self.mongo_docs("one_on_ones", {"manager_id": manager, "removed": False})
        return sorted(docs, key=lambda d: d["start"])

    async def wait_read_model(
        self, manager: str, check: Callable[[list[Doc]], bool], timeout: float = 30
    ) -> list[Doc]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        docs: list[Doc] = []
        while loop.time() < deadline:
            docs = await self.one_on_ones(manager)
            if check(docs):
                return docs
            await asyncio.sleep(0.2)
        summary = [(d.get("subject"), d.get("start"), d.get("is_cancelled")) for d in docs]
        raise AssertionError(f"read model not as expected within {timeout}s: {summary}")

    async def dead_letters(self, spec: TopicSpec) -> list[bytes]:
        """Everything on the topic's dead-letter topic so far."""
        consumer = AIOKafkaConsumer(
            self.settings.dead_letter_topic(spec),
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=1500)
            return [r.value or b"" for records in batch.values() for r in records]
        finally:
            await consumer.stop()

    async def move_and_restore(self, user_id: str, event_id: str) -> dict[str, Any]:
        """The person drags the event to Deleted Items and back (its default id changes)."""
        moved: dict[str, Any] = await self.control(
            "POST", f"/users/{user_id}/events/{event_id}/move"
        )
        return moved

    async def subscriptions(self) -> list[Doc]:
        found: list[Doc] = await self.control("GET", "/subscriptions")
        return found


def subjects(docs: list[Doc]) -> list[str]:
    return sorted(str(d["subject"]) for d in docs)
