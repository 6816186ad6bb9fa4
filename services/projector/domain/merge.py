"""How meeting and connection events become read-model documents, order-tolerant and
idempotent.

Every event is turned into a `VersionedWrite`. A document's `version` only grows: a write
whose version is not newer than the stored one is dropped, so duplicates and out-of-order
deliveries converge, and replaying a topic from the start rebuilds the same documents.

- An upsert sets the meeting's whole snapshot (plus `member_email` in lower case for the
  pair queries and `removed=false`).
- A removal leaves a tombstone: `removed=true` with its version and only the identity
  fields, so an older upsert arriving later can't bring the meeting back, and the
  tombstone is the same whether the meeting was ever seen or not.
- `created_in_smvue` and `smvue_command_id` are sticky. The writer publishes a meeting it
  created (`created_in_smvue=true`); the syncer later sees the same meeting in Outlook
  and can't know where it came from (`created_in_smvue=false`). Whatever the order, the
  meeting is shown once, marked as created in SMVue: the flag is applied by a separate
  unconditional update (`sticky`) and versioned writes never set it back to false. The
  writer's removal of its meeting carries the flag too.

Replay after compaction (ADR 0009). The meetings topic is compacted: the broker keeps only
the last record per Kafka key. Each producer has its own key per meeting (the syncer the
meeting id, the writer `meeting id#smvue`) and publishes a meeting's records with growing
versions, so compaction keeps each producer's newest record, and every record the writer
publishes about its meeting says `created_in_smvue=true`. A document here is a function of
the *set* of records — the fields of the highest version, plus the sticky flag if any
record carries it — and that function gives the same value on the full log as on what
compaction keeps of it: a replay into an empty read model rebuilds the same documents.
Consumers rely on the payload's `meeting_id`, never on the record key.

`apply_write` is the reference semantics of a write on one document (the adapter performs
the same as MongoDB updates); the unit tests fold events through it in every order.
`coalesce` turns a batch of writes into one write per document with the same effect, so
the projector applies a batch as one unordered bulk write (ADR 0007).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.contracts.connections import ConnectionSnapshot
from shared.contracts.meetings import MeetingRemoval, MeetingSnapshot

Document = dict[str, Any]

STICKY_FIELDS = ("created_in_smvue", "smvue_command_id")
IDENTITY_FIELDS = ("connection_id", "manager_id", "graph_event_id")
# Everything an upsert sets that a tombstone must not keep.
SNAPSHOT_ONLY_FIELDS = tuple(
    name
    for name in (*MeetingSnapshot.model_fields, "member_email")
    if name not in ("meeting_id", "version", *IDENTITY_FIELDS, *STICKY_FIELDS)
)
NOT_FROM_SMVUE: Mapping[str, Any] = {"created_in_smvue": False, "smvue_command_id": None}


@dataclass(frozen=True)
class VersionedWrite:
    """One event's effect on one document, applied only if `version` is newer."""

    doc_id: str
    version: int
    set_fields: Mapping[str, Any]
    set_on_insert: Mapping[str, Any] = field(default_factory=dict)
    unset_fields: tuple[str, ...] = ()
    sticky: Mapping[str, Any] | None = None  # applied even when the write itself is stale


def supersedes(stored_version: int | None, incoming_version: int) -> bool:
    """The only ordering rule: strictly newer wins; equal is a duplicate."""
    return stored_version is None or incoming_version > stored_version


def meeting_upsert(meeting: MeetingSnapshot) -> VersionedWrite:
    fields = meeting.model_dump(mode="python", exclude={"meeting_id", *STICKY_FIELDS})
    fields["member_email"] = meeting.member.email.lower()
    fields["removed"] = False
    fields["removal_reason"] = None
    sticky = sticky_fields(meeting)
    if sticky is not None:
        fields.update(sticky)
    set_on_insert = {k: v for k, v in NOT_FROM_SMVUE.items() if k not in fields}
    return VersionedWrite(
        doc_id=meeting.meeting_id,
        version=meeting.version,
        set_fields=fields,
        set_on_insert=set_on_insert,
        sticky=sticky,
    )


def sticky_fields(meeting: MeetingSnapshot | MeetingRemoval) -> dict[str, Any] | None:
    """Only a writer's `created_in_smvue=true` is sticky; `false` says nothing."""
    if not meeting.created_in_smvue:
        return None
    sticky: dict[str, Any] = {"created_in_smvue": True}
    if meeting.smvue_command_id is not None:
        sticky["smvue_command_id"] = meeting.smvue_command_id
    return sticky


def meeting_tombstone(removal: MeetingRemoval) -> VersionedWrite:
    fields: dict[str, Any] = {
        "connection_id": removal.connection_id,
        "manager_id": removal.manager_id,
        "graph_event_id": removal.graph_event_id,
        "version": removal.version,
        "removed": True,
        "removal_reason": removal.reason.value,
    }
    sticky = sticky_fields(removal)
    if sticky is not None:
        fields.update(sticky)
    return VersionedWrite(
        doc_id=removal.meeting_id,
        version=removal.version,
        set_fields=fields,
        set_on_insert={k: v for k, v in NOT_FROM_SMVUE.items() if k not in fields},
        unset_fields=SNAPSHOT_ONLY_FIELDS,
        sticky=sticky,
    )


def connection_write(snapshot: ConnectionSnapshot, event_type: str) -> VersionedWrite:
    """The Integrations card: the latest snapshot by version, and which event said so."""
    fields = snapshot.model_dump(mode="python", exclude={"connection_id"})
    fields["last_event_type"] = event_type
    return VersionedWrite(
        doc_id=snapshot.connection_id, version=snapshot.version, set_fields=fields
    )


def apply_write(stored: Document | None, write: VersionedWrite) -> Document:
    """What the conditional upsert + sticky update do to one document (pure model)."""
    doc = None if stored is None else dict(stored)
    if doc is None or supersedes(doc.get("version"), write.version):
        if doc is None:
            doc = {"_id": write.doc_id, **write.set_on_insert}
        for name in write.unset_fields:
            doc.pop(name, None)
        doc.update(write.set_fields)
        doc["version"] = write.version
    if write.sticky is not None:
        doc.update(write.sticky)
    return doc


def fold(writes: Iterable[VersionedWrite]) -> dict[str, Document]:
    """All documents after applying `writes` in the given order."""
    docs: dict[str, Document] = {}
    for write in writes:
        docs[write.doc_id] = apply_write(docs.get(write.doc_id), write)
    return docs


def coalesce(writes: Iterable[VersionedWrite]) -> list[VersionedWrite]:
    """One write per document, with the same effect on any stored document as applying
    `writes` in order: the newest version's write (the first of equal ones — a later equal
    one is a duplicate), carrying every sticky update of the batch merged in order (sticky
    updates apply whatever the versions, the last value of a field wins)."""
    newest: dict[str, VersionedWrite] = {}
    sticky: dict[str, dict[str, Any]] = {}
    for write in writes:
        current = newest.get(write.doc_id)
        if current is None or supersedes(current.version, write.version):
            newest[write.doc_id] = write
        if write.sticky:
            sticky.setdefault(write.doc_id, {}).update(write.sticky)
    return [replace(write, sticky=sticky.get(doc_id)) for doc_id, write in newest.items()]
