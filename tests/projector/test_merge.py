"""Version and merge rules (pure): duplicates, any order, tombstones, sticky SMVue origin,
connection snapshots by version."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from services.projector.domain.merge import (
    SNAPSHOT_ONLY_FIELDS,
    VersionedWrite,
    apply_write,
    connection_write,
    fold,
    meeting_tombstone,
    meeting_upsert,
    supersedes,
)
from shared.contracts.connections import ConnectionSnapshot, ConnectionState
from shared.contracts.meetings import (
    MeetingRemoval,
    MeetingSnapshot,
    MeetingSource,
    Person,
    RemovalReason,
)

START = datetime(2030, 6, 3, 9, tzinfo=UTC)


def snapshot(version: int, subject: str = "1:1", **changes: Any) -> MeetingSnapshot:
    fields: dict[str, Any] = {
        "meeting_id": "mtg_1",
        "connection_id": "c1",
        "manager_id": "ann",
        "member": Person(email="Bob@Contoso.test", display_name="Bob"),
        "member_id": "bob",
        "graph_event_id": "ev1",
        "event_type": "singleInstance",
        "subject": subject,
        "start": START,
        "end": START + timedelta(minutes=30),
        "source": MeetingSource.OUTLOOK,
        "version": version,
    }
    fields.update(changes)
    return MeetingSnapshot(**fields)


def from_writer(version: int, command_id: str = "cmd-1") -> MeetingSnapshot:
    return snapshot(
        version, "from SMVue", source=MeetingSource.SMVUE, created_in_smvue=True,
        smvue_command_id=command_id,
    )  # fmt: skip


def removal(version: int) -> MeetingRemoval:
    return MeetingRemoval(
        meeting_id="mtg_1",
        connection_id="c1",
        manager_id="ann",
        graph_event_id="ev1",
        reason=RemovalReason.DELETED,
        version=version,
    )


def every_order(writes: list[VersionedWrite]) -> list[dict[str, Any]]:
    return [fold(order)["mtg_1"] for order in itertools.permutations(writes)]


def test_only_a_strictly_newer_version_wins() -> None:
    assert supersedes(None, 0)
    assert supersedes(4, 5)
    assert not supersedes(5, 5)  # a duplicate
    assert not supersedes(6, 5)


def test_upsert_document_holds_the_snapshot_and_a_lower_case_member_email() -> None:
    doc = fold([meeting_upsert(snapshot(3))])["mtg_1"]
    assert doc["_id"] == "mtg_1" and "meeting_id" not in doc
    assert doc["version"] == 3 and doc["removed"] is False
    assert doc["member_email"] == "bob@contoso.test"
    assert doc["member"] == {"email": "Bob@Contoso.test", "display_name": "Bob"}
    assert doc["created_in_smvue"] is False and doc["smvue_command_id"] is None
    assert doc["start"] == START


def test_duplicates_and_any_order_converge_on_the_newest() -> None:
    writes = [meeting_upsert(snapshot(v, f"v{v}")) for v in (1, 2, 3)]
    writes.append(meeting_upsert(snapshot(3, "v3")))  # duplicate
    results = every_order(writes)
    assert all(doc == results[0] for doc in results)
    assert results[0]["subject"] == "v3" and results[0]["version"] == 3


def test_a_stale_upsert_cannot_resurrect_a_removed_meeting() -> None:
    writes = [meeting_upsert(snapshot(1)), meeting_tombstone(removal(2))]
    results = every_order(writes)
    assert results[0] == results[1]
    tombstone = results[0]
    assert tombstone["removed"] is True and tombstone["version"] == 2
    assert tombstone["removal_reason"] == "deleted"
    assert not set(SNAPSHOT_ONLY_FIELDS) & set(tombstone)  # nothing of the old snapshot
    assert tombstone["manager_id"] == "ann"


def test_a_newer_upsert_brings_a_removed_meeting_back() -> None:
    writes = [meeting_tombstone(removal(2)), meeting_upsert(snapshot(3, "back"))]
    results = every_order(writes)
    assert results[0] == results[1]
    assert results[0]["removed"] is False and results[0]["subject"] == "back"
    assert results[0]["removal_reason"] is None


def test_writer_then_syncer_shows_one_meeting_created_in_smvue_in_any_order() -> None:
    writes = [meeting_upsert(from_writer(100)), meeting_upsert(snapshot(200, "seen in Outlook"))]
    results = every_order(writes)
    assert results[0] == results[1]
    doc = results[0]
    assert doc["subject"] == "seen in Outlook" and doc["source"] == "outlook"
    assert doc["created_in_smvue"] is True and doc["smvue_command_id"] == "cmd-1"


def test_the_smvue_origin_survives_removal_and_a_late_writer_event() -> None:
    writes = [
        meeting_upsert(snapshot(300, "syncer")),
        meeting_tombstone(removal(400)),
        meeting_upsert(from_writer(100)),
    ]
    results = every_order(writes)
    assert all(doc == results[0] for doc in results)
    assert results[0]["removed"] is True and results[0]["created_in_smvue"] is True


def test_a_syncer_event_alone_never_claims_smvue_origin() -> None:
    write = meeting_upsert(snapshot(1))
    assert write.sticky is None
    assert apply_write(None, write)["created_in_smvue"] is False


def writer_removal(version: int, command_id: str = "cmd-1") -> MeetingRemoval:
    return removal(version).model_copy(
        update={"created_in_smvue": True, "smvue_command_id": command_id}
    )


def test_the_writers_removal_says_the_meeting_came_from_smvue() -> None:
    doc = fold([meeting_tombstone(writer_removal(5))])["mtg_1"]
    assert doc["removed"] is True
    assert doc["created_in_smvue"] is True and doc["smvue_command_id"] == "cmd-1"
    assert fold([meeting_tombstone(removal(5))])["mtg_1"]["created_in_smvue"] is False


def compacted(log: list[tuple[str, VersionedWrite]]) -> list[tuple[str, VersionedWrite]]:
    """What log compaction keeps: the last record per key, in log order."""
    last = {key: index for index, (key, _) in enumerate(log)}
    return [record for index, record in enumerate(log) if last[record[0]] == index]


def test_the_compacted_log_folds_to_the_same_document_as_the_whole_log() -> None:
    """ADR 0009: one key per producer, growing versions per producer, the flag on every
    writer record: whatever the interleaving, compaction doesn't change the document."""
    rng = random.Random(9)
    syncer_kinds = [lambda v: meeting_upsert(snapshot(v, f"outlook v{v}")),
                    lambda v: meeting_tombstone(removal(v))]  # fmt: skip
    writer_kinds = [lambda v: meeting_upsert(from_writer(v)),
                    lambda v: meeting_tombstone(writer_removal(v))]  # fmt: skip
    compared = 0
    for _ in range(400):
        versions = {"syncer": 0, "writer": 0}
        log: list[tuple[str, VersionedWrite]] = []
        for _ in range(rng.randint(1, 7)):
            producer = rng.choice(["syncer", "writer"])
            versions[producer] += rng.randint(1, 5)  # each producer's versions only grow
            kinds = syncer_kinds if producer == "syncer" else writer_kinds
            log.append((producer, rng.choice(kinds)(versions[producer])))
        kept = compacted(log)
        compared += len(kept) < len(log)
        assert fold(w for _, w in kept) == fold(w for _, w in log), log
    assert compared > 100  # most logs lost records to compaction


def test_one_shared_key_loses_the_newest_record_to_compaction() -> None:
    """Why the writer doesn't share the syncer's key: the last record of a shared key can
    be the older version (and lack the flag)."""
    log = [("mtg_1", meeting_upsert(from_writer(10))), ("mtg_1", meeting_upsert(snapshot(9)))]
    assert fold(w for _, w in compacted(log)) != fold(w for _, w in log)


def card(version: int, state: ConnectionState) -> ConnectionSnapshot:
    return ConnectionSnapshot(
        connection_id="c1", user_id="ann", state=state, can_write=True, version=version
    )


def test_connection_card_keeps_the_latest_snapshot_by_version() -> None:
    writes = [
        connection_write(card(1, ConnectionState.CONNECTED), "connection.connected"),
        connection_write(
            card(2, ConnectionState.REAUTHORIZATION_REQUIRED), "connection.status_changed"
        ),
        connection_write(card(3, ConnectionState.DISCONNECTED), "connection.disconnected"),
    ]
    results = [fold(order)["c1"] for order in itertools.permutations(writes)]
    assert all(doc == results[0] for doc in results)
    assert results[0]["state"] == "disconnected" and results[0]["version"] == 3
    assert results[0]["last_event_type"] == "connection.disconnected"
    assert results[0]["user_id"] == "ann" and "connection_id" not in results[0]
