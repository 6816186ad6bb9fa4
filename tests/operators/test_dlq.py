"""`smvue-sync dlq`: a poison record is listed, fixed at its cause, redriven to the group
that failed it (and only to it), applied once however often it is redriven; a record that
fails again returns to the dead-letter topic with its redrive count; purge asks first."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

import services.projector.handlers as projector_handlers
from services.projector.domain.merge import connection_write as real_write
from shared.contracts.connections import (
    ConnectionSnapshot,
    ConnectionState,
    ConnectionStatusChanged,
    connection_id_for,
)
from shared.contracts.topics import AUDIT, CONNECTIONS
from shared.messaging.dlq import read_dead_letters
from shared.settings import Settings
from tests.fixtures.services import build, running
from tests.operators.conftest import Doc, cli, end_offsets, eventually, publish, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def card(user: str, version: int = 1) -> ConnectionStatusChanged:
    cid = connection_id_for(user)
    return ConnectionStatusChanged.build(
        key=cid,
        payload=ConnectionSnapshot(
            connection_id=cid,
            user_id=user,
            state=ConnectionState.CONNECTED,
            granted_scopes=["Calendars.ReadWrite"],
            can_write=True,
            version=version,
        ),
    )


async def test_poison_record_is_fixed_and_redriven_to_its_group_once(
    settings: Settings, mongo: AsyncMongoClient[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    def buggy(payload: Any, kind: str) -> Any:  # the projector bug the operator fixes
        if payload.user_id == "ann":
            raise ValueError("projector bug: cannot project ann (token=eyJabcdefghij.klmnopqrst.x)")
        return real_write(payload, kind)

    monkeypatch.setattr(projector_handlers, "connection_write", buggy)
    connections = mongo[settings.mongodb_database]["connections"]
    group = f"{settings.group_id('projector')}.{CONNECTIONS.name}"

    async with running(build("projector", settings)):
        await publish(settings, card("ann"), card("bob"))
        await eventually(lambda: read_dead_letters(settings), lambda d: len(d) == 1)
        await eventually(lambda: connections.count_documents({}), lambda n: n == 1)

        listed = await cli(settings, "dlq", "list", "--json")
        assert listed.exit_code == 1, listed.stderr  # something is waiting
        [row] = listed.json()["dead_letters"]
        assert row["group"] == group
        assert row["type"] == "connection.status_changed"
        assert row["reason"] == "handler_failed"
        assert "projector bug" in row["error"] and "eyJ" not in row["error"]
        assert row["status"] == "dead"
        assert listed.json()["summary"]["by"][0]["count"] == 1
        poison = row["id"]

        shown = await cli(settings, "dlq", "show", poison, "--json")
        assert shown.exit_code == 0
        assert shown.json()["value"]["payload"]["user_id"] == "ann"
        assert shown.json()["headers"]["x-dlq-consumer-group"] == group
        assert (await cli(settings, "dlq", "show", "nope:0:0")).exit_code == 3

        source_ends = await end_offsets(settings, [settings.topic(CONNECTIONS)])

        # Redriven before the fix: it fails again and goes back with its redrive count.
        again = await cli(settings, "dlq", "redrive", "--ids", poison, "--json")
        assert again.exit_code == 1
        [failed] = again.json()
        assert failed["outcome"] == "failed_again" and failed["new_id"]
        copy = failed["new_id"]
        letters = {d.id: d for d in await read_dead_letters(settings)}
        assert letters[copy].redrive_count == 1 and letters[copy].group == group

        # Fixed at its cause; the copy is redriven and applied.
        monkeypatch.setattr(projector_handlers, "connection_write", real_write)
        dry = await cli(settings, "dlq", "redrive", "--group", group, "--dry-run", "--json")
        assert {r["id"]: r["outcome"] for r in dry.json()} == {
            poison: "already_redriven",
            copy: "would_redrive",
        }
        assert await connections.count_documents({}) == 1  # dry run changed nothing
        fixed = await cli(settings, "dlq", "redrive", "--group", group, "--json")
        assert fixed.exit_code == 0, fixed.stdout
        assert {r["id"]: r["outcome"] for r in fixed.json()} == {
            poison: "already_redriven",
            copy: "applied",
        }
        doc = await connections.find_one({"_id": connection_id_for("ann")})
        assert doc is not None and doc["state"] == "connected"

        # Redriving twice applies once.
        twice = await cli(settings, "dlq", "redrive", "--ids", copy, "--json")
        assert twice.exit_code == 0
        assert twice.json()[0]["outcome"] == "already_redriven"

        # Only that group: nothing went back onto the shared source topic, which the
        # syncer's group also consumes.
        assert await end_offsets(settings, [settings.topic(CONNECTIONS)]) == source_ends

    audits = [
        r["payload"]
        for r in await read_topic(settings, settings.topic(AUDIT))
        if r["payload"]["operation"] == "dlq.redrive"
    ]
    assert [(a["target_ids"], a["outcome"], a["service"]) for a in audits] == [
        ([poison], "failed", "projector"),
        ([copy], "succeeded", "projector"),
    ]
    after = (await cli(settings, "dlq", "list", "--json")).json()["dead_letters"]
    assert {r["id"]: r["status"] for r in after} == {
        poison: f"redriven: failed → {copy}",
        copy: "redriven: applied",
    }


async def test_purge_asks_then_deletes_older_dead_letters(settings: Settings) -> None:
    async with running(build("projector", settings)):
        await publish(settings)  # topics exist; put one unreadable record on meetings
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(settings.topic(CONNECTIONS), b"not json {")
        finally:
            await producer.stop()
        await eventually(lambda: read_dead_letters(settings), lambda d: len(d) == 1)

    refused = await cli(settings, "dlq", "purge", "--older-than", "0s", input="n\n")
    assert refused.exit_code == 4
    assert len(await read_dead_letters(settings)) == 1
    kept = await cli(settings, "dlq", "purge", "--older-than", "1d", "--yes", "--json")
    assert kept.exit_code == 0 and kept.json() == []
    purged = await cli(settings, "dlq", "purge", "--older-than", "0s", "--yes", "--json")
    assert purged.exit_code == 0
    assert [p["deleted"] for p in purged.json()] == [1]
    assert await read_dead_letters(settings) == []
