"""The audit log over a connection's life: connect, import, subscription create / renew /
delete, a write, disconnect — each one record on the audit topic, saying who, what, on
which ids, with what outcome and Graph's request id, and never a token or a body."""

from __future__ import annotations

import uuid

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.contracts.audit import AuditEntry, AuditOperation, AuditOutcome
from shared.contracts.connections import connection_id_for
from shared.contracts.outcomes import CommandSucceeded
from shared.contracts.topics import AUDIT, COMMAND_OUTCOMES
from tests.fixtures.connect import SERVICE_TOKEN, connect_user
from tests.fixtures.kafka import TopicReader
from tests.fixtures.services import build, running
from tests.sync.world import World
from tests.writer.test_writer import outcome, schedule

pytestmark = pytest.mark.integration

CID = connection_id_for("ann")
GRAPH_OPERATIONS = {
    AuditOperation.DELTA_ROUND,
    AuditOperation.SUBSCRIPTION_CREATE,
    AuditOperation.SUBSCRIPTION_RENEW,
    AuditOperation.SUBSCRIPTION_DELETE,
    AuditOperation.EVENT_CREATE,
}


def entries_of(reader: TopicReader) -> list[AuditEntry]:
    return [m.payload for m in reader.messages]


def operations(reader: TopicReader) -> set[AuditOperation]:
    return {e.operation for e in entries_of(reader)}


async def test_every_calendar_operation_is_audited_without_secrets(world: World) -> None:
    await world.roster("ann", world.cloud.member.mail, version=1)
    marker = f"BODY-{uuid.uuid4().hex}"
    async with TopicReader(world.settings, AUDIT) as audit:
        assert (
            await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
        ).status == "connected"
        await audit.wait_for(
            lambda _: (
                {AuditOperation.CONNECT, AuditOperation.DELTA_ROUND}
                | {AuditOperation.SUBSCRIPTION_CREATE}
                <= operations(audit)
            )
        )

        async with (
            running(build("writer", world.settings)),
            TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes,
        ):
            command = schedule(f"audit-{uuid.uuid4().hex[:8]}", prep_url=f"https://x.test/{marker}")
            await world.publish(command)
            assert isinstance(await outcome(outcomes, command.payload.command_id), CommandSucceeded)

        [subscription] = await world.subscriptions()
        await world.control(
            "POST",
            f"/subscriptions/{subscription['id']}/lifecycle",
            json={"lifecycleEvent": "reauthorizationRequired"},
        )
        await audit.wait_for(lambda _: AuditOperation.SUBSCRIPTION_RENEW in operations(audit))

        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{world.settings.ingress_port}",
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        ) as api:
            assert (await api.post("/v1/connections/ann/disconnect")).status_code == 202
        await audit.wait_for(
            lambda _: (
                {AuditOperation.DISCONNECT, AuditOperation.SUBSCRIPTION_DELETE} <= operations(audit)
            )
        )

    entries = entries_of(audit)
    seen = {e.operation for e in entries}
    assert {
        AuditOperation.CONNECT,
        AuditOperation.DELTA_ROUND,
        AuditOperation.SUBSCRIPTION_CREATE,
        AuditOperation.EVENT_CREATE,
        AuditOperation.SUBSCRIPTION_RENEW,
        AuditOperation.DISCONNECT,
        AuditOperation.SUBSCRIPTION_DELETE,
    } <= seen
    for entry in entries:
        assert entry.connection_id == CID, entry
        if entry.operation in GRAPH_OPERATIONS and entry.outcome is AuditOutcome.SUCCEEDED:
            assert entry.graph_request_id, entry
    by_operation = {e.operation: e for e in entries}
    assert by_operation[AuditOperation.EVENT_CREATE].command_id == command.payload.command_id
    assert by_operation[AuditOperation.EVENT_CREATE].service == "writer"
    assert by_operation[AuditOperation.SUBSCRIPTION_CREATE].target_ids == [subscription["id"]]

    # No token, secret or body travels: the raw records hold none of them.
    raw = b"\n".join(audit.raw)
    secrets = [
        SERVICE_TOKEN,
        world.cloud.client_secret,
        marker,
        "eyJ",  # any JWT (access or id token)
        "Bearer",
        "clientState",
    ]
    assert [s for s in secrets if s.encode() in raw] == []


async def test_the_audit_topic_keeps_records_long_and_is_never_compacted(world: World) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=world.settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        [described] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, world.settings.topic(AUDIT))]
        )
    finally:
        await admin.close()
    configs = {name: value for name, value, *_ in described.resources[0][4]}
    assert configs["cleanup.policy"] == "delete"
    assert int(configs["retention.ms"]) >= 365 * 24 * 3600 * 1000
