"""The example platform consumer (examples/meetings_consumer.py) against the real broker:
records of both producers, a stale older version, a duplicate, a cancel and a removal,
published as the services publish them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from examples.meetings_consumer import MeetingsView, read_view
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
    syncer_record_key,
    writer_record_key,
)
from shared.contracts.topics import MEETINGS
from shared.infra.endpoints import InfraEndpoints
from tests.fixtures.services import create_topics, isolated_settings
from tests.fixtures.waiting import publish

CID = connection_id_for("ann")
START = datetime(2030, 6, 3, 9, tzinfo=UTC)


def snapshot(event: str, version: int, **fields: object) -> MeetingSnapshot:
    values: dict[str, object] = {
        "meeting_id": meeting_id_for(CID, event),
        "connection_id": CID,
        "manager_id": "ann",
        "member": Person(email="bob@contoso.test"),
        "graph_event_id": event,
        "event_type": "singleInstance",
        "subject": f"1:1 {event} v{version}",
        "start": START + timedelta(days=version),
        "end": START + timedelta(days=version, minutes=30),
        "source": MeetingSource.OUTLOOK,
        "version": version,
    }
    values.update(fields)
    return MeetingSnapshot(**values)  # type: ignore[arg-type]


def upserted(
    event: str, version: int, *, writer: bool = False, **fields: object
) -> MeetingUpserted:
    meeting = snapshot(event, version, **fields)
    key = writer_record_key if writer else syncer_record_key
    return MeetingUpserted.build(key=key(meeting.meeting_id), payload=meeting)


def removed(event: str, version: int) -> MeetingRemoved:
    removal = MeetingRemoval(
        meeting_id=meeting_id_for(CID, event),
        connection_id=CID,
        manager_id="ann",
        graph_event_id=event,
        reason=RemovalReason.DELETED,
        version=version,
    )
    return MeetingRemoved.build(key=syncer_record_key(removal.meeting_id), payload=removal)


@pytest.mark.integration
async def test_the_example_consumer_builds_the_view_from_both_producers(
    infra: InfraEndpoints,
) -> None:
    settings = isolated_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri)
    await create_topics(settings, partitions=2)
    await publish(
        settings,
        # the writer created "made"; the syncer later saw it in Outlook (flag unknown to it)
        upserted("made", 1, writer=True, created_in_smvue=True, source=MeetingSource.SMVUE),
        upserted("made", 2),
        # "kept": a newer version, then a stale older one and a duplicate arrive
        upserted("kept", 3),
        upserted("kept", 2),
        upserted("kept", 3),
        # "cancelled" stays listed, flagged; "gone" is removed, and an older upsert after
        # the tombstone doesn't bring it back
        upserted("cancelled", 1),
        upserted("cancelled", 2, is_cancelled=True),
        upserted("gone", 1),
        removed("gone", 2),
        upserted("gone", 1),
    )
    view = await read_view(settings.kafka_bootstrap_servers, settings.topic(MEETINGS))

    live = {m.snapshot["graph_event_id"]: m for m in view.live()}
    assert sorted(live) == ["cancelled", "kept", "made"]
    assert live["made"].created_in_smvue is True and live["made"].version == 2
    assert live["kept"].version == 3 and live["kept"].snapshot["subject"] == "1:1 kept v3"
    assert live["cancelled"].snapshot["is_cancelled"] is True
    assert view.meetings[meeting_id_for(CID, "gone")].removed
    assert view.dropped == 3  # the stale one, the duplicate, the upsert after the tombstone


def test_records_in_any_order_give_the_same_view() -> None:
    records = [
        r.model_dump(mode="json")
        for r in (
            upserted("a", 1, writer=True, created_in_smvue=True),
            upserted("a", 2),
            removed("b", 2),
            upserted("b", 1),
        )
    ]
    views = [MeetingsView().apply_all(order) for order in (records, records[::-1])]
    assert [(m.meeting_id, m.version, m.created_in_smvue) for m in views[0].live()] == [
        (m.meeting_id, m.version, m.created_in_smvue) for m in views[1].live()
    ]
    assert all(v.meetings[meeting_id_for(CID, "b")].removed for v in views)
