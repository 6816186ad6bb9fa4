"""`smvue-sync audit tail`: the audit topic read back, filtered by user, operation and
time, with Graph's request ids, as a table or JSON lines; nothing committed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.audit import AuditLog
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.messaging.broker import create_broker
from shared.messaging.publisher import KafkaPublisher
from shared.settings import Settings
from tests.operators.conftest import cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_audit_tail_filters_and_shows_graph_request_ids(settings: Settings) -> None:
    broker = create_broker(settings, "test-audit")
    await broker.start()
    try:
        audit = AuditLog(KafkaPublisher(broker, settings), "writer")
        await audit.record(
            AuditOperation.EVENT_CREATE, AuditOutcome.SUCCEEDED, user_id="ann",
            connection_id="c-ann", http_status=201, graph_request_id="req-ann-1",
        )  # fmt: skip
        await audit.record(
            AuditOperation.EVENT_CANCEL, AuditOutcome.FAILED, user_id="ann",
            http_status=404, graph_request_id="req-ann-2",
        )  # fmt: skip
        await audit.record(
            AuditOperation.CONNECT, AuditOutcome.SUCCEEDED, user_id="bob", http_status=200
        )
    finally:
        await broker.stop()

    every = await cli(settings, "audit", "tail", "--json")
    assert every.exit_code == 0, every.stderr
    lines = [json.loads(line) for line in every.stdout.splitlines()]
    assert sorted(r["graph_request_id"] or "" for r in lines) == ["", "req-ann-1", "req-ann-2"]

    anns = await cli(settings, "audit", "tail", "--user", "ann", "--operation", "graph.", "--json")
    rows = [json.loads(line) for line in anns.stdout.splitlines()]
    assert {(r["operation"], r["outcome"], r["http_status"]) for r in rows} == {
        ("graph.event_create", "succeeded", 201),
        ("graph.event_cancel", "failed", 404),
    }
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    none = await cli(settings, "audit", "tail", "--since", later, "--json")
    assert none.exit_code == 0 and none.stdout.strip() == ""
    assert (await cli(settings, "audit", "tail", "--since", "yesterday")).exit_code == 2

    table = await cli(settings, "audit", "tail", "--user", "bob")
    assert table.exit_code == 0 and "1 audit entry" in table.stdout  # bob's one
