"""Races between instances end in one atomic conditional write (issue 10, item 7; issue 9,
item 9): a command id claimed once, a roster version that only grows and a stale one
refused with 409 and the current version. Concurrent callers on the real MongoDB server
(the publisher is a fake of our port)."""

from __future__ import annotations

import asyncio
import base64
import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.ingress.commands.domain import REUSED_ID
from services.ingress.commands.handlers import CommandHandlers, Rejected, StaleRoster
from services.ingress.commands.store import CommandStatusStore, RosterStore
from services.syncer.adapters.store import SyncerStore
from shared.connections.registry import ConnectionRegistry
from shared.contracts.commands import ScheduleMeeting, ScheduleMeetingRequest
from shared.contracts.connections import AccountKind, ConnectedAccount
from shared.contracts.roster import RosterUpdated, TeamMember
from shared.infra.endpoints import InfraEndpoints
from shared.mongo import Document
from tests.fixtures.connect import SERVICE_TOKEN
from tests.fixtures.faults import RecordingPublisher
from tests.fixtures.services import build, create_topics, isolated_settings, running

pytestmark = pytest.mark.integration

BOB = TeamMember(member_id="bob", email="bob@contoso.test", display_name="Bob")
CY = TeamMember(member_id="cy", email="cy@contoso.test", display_name="Cy")


async def command_handlers(
    db: AsyncDatabase[Document],
) -> tuple[CommandHandlers, RecordingPublisher]:
    registry = ConnectionRegistry(db)
    account = ConnectedAccount(
        user_principal_name="ann@contoso.test", tenant_id="t", kind=AccountKind.WORK
    )
    await registry.connected("ann", account, ["Calendars.ReadWrite"], can_write=True)
    sink = RecordingPublisher()
    handlers = CommandHandlers(
        registry=registry,
        statuses=CommandStatusStore(db),
        rosters=RosterStore(db),
        publisher=sink,
    )
    await handlers.put_roster("ann", [BOB], 1)
    return handlers, sink


def schedule(command_id: str, hour: int) -> ScheduleMeetingRequest:
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    return ScheduleMeetingRequest.model_validate(
        {
            "command_id": command_id,
            "manager_id": "ann",
            "member_name": "Bob",
            "member_email": "bob@contoso.test",
            "start": datetime(day.year, day.month, day.day, hour),
            "time_zone": "UTC",
            "meeting_type": "30min",
            "prep_url": "https://app.smvue.test/prep/1",
        }
    )


async def test_one_command_id_used_by_racing_requests_is_accepted_once(
    db: AsyncDatabase[Document],
) -> None:
    """Eight different commands posted at once under one id (two backend instances that
    both generated it, say): exactly one is accepted and published; the rest are refused."""
    handlers, sink = await command_handlers(db)
    results = await asyncio.gather(
        *(handlers.schedule(schedule("cmd-raced-1", 8 + n)) for n in range(8)),
        return_exceptions=True,
    )
    accepted = [r for r in results if r == "cmd-raced-1"]
    refused = [r for r in results if isinstance(r, Rejected) and r.rejection == REUSED_ID]
    assert (len(accepted), len(refused)) == (1, 7), results
    assert len(sink.of(ScheduleMeeting)) == 1
    status = await handlers.status("cmd-raced-1")
    assert status is not None and status["state"] == "accepted"

    # The same command again (a retry of the winner): harmless, nothing re-published.
    winner = sink.of(ScheduleMeeting)[0].payload
    assert await handlers.schedule(winner) == "cmd-raced-1"  # type: ignore[arg-type]
    assert len(sink.of(ScheduleMeeting)) == 1


async def test_a_refused_command_frees_its_id(db: AsyncDatabase[Document]) -> None:
    handlers, sink = await command_handlers(db)
    past = schedule("cmd-freed-1", 9).model_copy(
        update={"start": datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)}
    )
    with pytest.raises(Rejected):
        await handlers.schedule(past)
    assert await handlers.status("cmd-freed-1") is None
    assert await handlers.schedule(schedule("cmd-freed-1", 9)) == "cmd-freed-1"
    assert len(sink.of(ScheduleMeeting)) == 1


async def test_the_syncers_roster_version_only_grows_under_concurrent_updates(
    db: AsyncDatabase[Document],
) -> None:
    """Rosters 1..12 applied at once by racing consumers: no error, version 12 stored."""
    store = SyncerStore(db)
    versions = list(range(1, 13))
    results = await asyncio.gather(
        *(store.put_roster("ann", [{"email": f"m{v}@contoso.test"}], v) for v in versions),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    stored = await store.roster("ann")
    assert stored is not None
    assert (stored["version"], stored["members"]) == (12, [{"email": "m12@contoso.test"}])
    assert await store.put_roster("ann", [], 11) is False  # stale: dropped
    assert await store.put_roster("ann", [], 12) is False  # the same version: dropped


async def test_a_stale_roster_is_refused_with_the_current_version(
    db: AsyncDatabase[Document],
) -> None:
    handlers, sink = await command_handlers(db)
    await handlers.put_roster("ann", [BOB, CY], 3)
    with pytest.raises(StaleRoster) as stale:
        await handlers.put_roster("ann", [CY], 2)
    assert stale.value.current_version == 3
    with pytest.raises(StaleRoster):
        await handlers.put_roster("ann", [CY], 3)  # another roster under the same version
    await handlers.put_roster("ann", [BOB, CY], 3)  # a retry of the stored one: fine
    rosters = [r.payload.version for r in sink.of(RosterUpdated)]  # type: ignore[attr-defined]
    assert rosters == [1, 3, 3]
    current = await handlers.roster("ann")
    assert current is not None and current.version == 3


async def test_the_roster_api_answers_409_for_a_stale_version(infra: InfraEndpoints) -> None:
    settings = isolated_settings(
        infra.kafka_bootstrap_servers,
        infra.mongodb_uri,
        token_keys={"k1": base64.b64encode(os.urandom(32)).decode()},
        token_active_key_id="k1",
        service_tokens=[SERVICE_TOKEN],
    )
    await create_topics(settings, partitions=1)
    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    bob = BOB.model_dump(mode="json")
    async with (
        running(build("ingress", settings)),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.ingress_port}", headers=headers
        ) as client,
    ):
        path = "/v1/managers/ann/roster"
        assert (await client.put(path, json={"members": [bob], "version": 5})).status_code == 202
        stale = await client.put(path, json={"members": [], "version": 4})
        assert stale.status_code == 409, stale.text
        assert stale.json()["detail"]["current_version"] == 5
        assert (await client.get(path)).json()["version"] == 5
