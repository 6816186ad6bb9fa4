"""Deciding what to publish from what Graph returned (pure): upserts, retractions, and
what to keep of each event for later re-evaluation (`kept.py`: little, for non-1:1s).

Input: the round's items (parsed through the allow-list), what consumers currently hold
(`Published`), the user's addresses and the manager's team. A *full* round (first import,
new window, expired token, roster re-evaluation) lists everything in the window, so a live
meeting it does not list fell out of the window; an incremental round lists only changes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.syncer.domain.kept import AddressHasher, kept_form
from services.syncer.domain.meetings import content_hash, snapshot
from services.syncer.domain.one_on_one import OneOnOne, TeamMemberRef, classify
from shared.contracts.meeting_versions import next_version
from shared.contracts.meetings import (
    MeetingRemoval,
    MeetingSnapshot,
    RemovalReason,
    meeting_id_for,
)
from shared.graph.event import GraphEvent, RemovedEntry


@dataclass(frozen=True)
class Published:
    """What consumers hold for one meeting: a live snapshot, or a retraction (tombstone)."""

    event_id: str
    version: int
    content_hash: str | None
    live: bool
    cancelled: bool = False  # a deleted 1:1 kept as cancelled: no full round retracts it


@dataclass
class Plan:
    upserts: list[tuple[MeetingSnapshot, str]] = field(default_factory=list)  # with hash
    removals: list[MeetingRemoval] = field(default_factory=list)
    store_items: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → kept form
    drop_items: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)  # every event id the round listed
    one_on_ones: int = 0  # events the round found to be 1:1s (published or unchanged)


def plan_round(
    items: Sequence[GraphEvent | RemovedEntry],
    published: Mapping[str, Published],
    *,
    connection_id: str,
    manager_id: str,
    owner_addresses: Collection[str],
    team: Mapping[str, TeamMemberRef],
    now: datetime,
    full: bool,
    hasher: AddressHasher,
    unchanged: Collection[str] = (),
    kept_one_on_ones: Mapping[str, GraphEvent] | None = None,
) -> Plan:
    """`unchanged`: event ids a full re-evaluation leaves as they are (listed, not passed).
    `kept_one_on_ones`: what is kept of the live 1:1s the round lists as removed (a deleted
    1:1 is published as cancelled from it, as the API promises)."""
    out = Plan()
    latest: dict[str, GraphEvent | RemovedEntry] = {}
    for item in items:  # the same event may come twice in one round: the last one wins
        latest.pop(item.id, None)
        latest[item.id] = item

    def retract(meeting_id: str, event_id: str, reason: RemovalReason) -> None:
        held = published.get(meeting_id)
        if held is None or not held.live:
            return  # consumers hold nothing live: nothing to retract
        out.removals.append(
            MeetingRemoval(
                meeting_id=meeting_id,
                connection_id=connection_id,
                manager_id=manager_id,
                graph_event_id=event_id,
                reason=reason,
                version=next_version(now, None, held.version),
            )
        )

    for event_id, item in latest.items():
        out.seen.add(event_id)
        meeting_id = meeting_id_for(connection_id, event_id)
        if isinstance(item, RemovedEntry):
            before = (kept_one_on_ones or {}).get(event_id)
            held = published.get(meeting_id)
            if before is not None and held is not None and held.live:
                # A deleted (or cancelled) 1:1 stays, flagged, for cadence history: from
                # then on it is kept as it was, cancelled (classified below).
                item = before.model_copy(update={"is_cancelled": True})
            else:
                out.drop_items.add(event_id)
                retract(meeting_id, event_id, RemovalReason.DELETED)
                continue
        decision = classify(item, owner_addresses, team)
        out.store_items[event_id] = kept_form(item, decision, list(owner_addresses), hasher)
        if not isinstance(decision, OneOnOne):
            retract(meeting_id, event_id, RemovalReason.NO_LONGER_ONE_ON_ONE)
            continue
        out.one_on_ones += 1
        held = published.get(meeting_id)
        meeting = snapshot(
            item,
            decision,
            connection_id=connection_id,
            manager_id=manager_id,
            version=next_version(now, item.last_modified, held.version if held else None),
        )
        digest = content_hash(meeting)
        if held is None or not held.live or held.content_hash != digest:
            out.upserts.append((meeting, digest))

    out.seen.update(unchanged)
    if full:
        for meeting_id, held in published.items():
            if held.live and not held.cancelled and held.event_id not in out.seen:
                out.drop_items.add(held.event_id)
                retract(meeting_id, held.event_id, RemovalReason.OUT_OF_WINDOW)
    return out
