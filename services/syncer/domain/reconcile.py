"""Deciding what to publish from what Graph returned (pure): upserts, retractions, and
what to keep of each event for later re-evaluation (`kept.py`: little, for non-1:1s).

Input: the round's items (parsed through the allow-list), what consumers currently hold
(`Published`), the user's addresses and the manager's team. A *full* round (first import,
new window, expired token, roster re-evaluation) lists everything in the window; an
incremental round lists only changes. A live 1:1 a full round does not list either left
the window — it stays with consumers as it was (history) and the syncer stops following it
(`Plan.forget`) — or was deleted while nobody watched (an expired deltaLink): it is
published as cancelled, as an incremental round publishes a deletion.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.syncer.domain.kept import AddressHasher, kept_form
from services.syncer.domain.meetings import content_hash, snapshot
from services.syncer.domain.one_on_one import OneOnOne, TeamMemberRef, classify
from services.syncer.domain.window import Window
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
    forget: set[str] = field(default_factory=set)  # meeting ids no longer followed (history)
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
    window: Window | None = None,
) -> Plan:
    """`unchanged`: event ids a full re-evaluation leaves as they are (listed, not passed).
    `kept_one_on_ones`: what is kept of the live 1:1s the round lists as removed, and, in a
    full round, of those it does not list (a deleted 1:1 is published as cancelled from
    it, as the API promises). `window`: what a full round listed (None: unknown)."""
    kept = kept_one_on_ones or {}
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

    def consider(event_id: str, item: GraphEvent | RemovedEntry) -> None:
        meeting_id = meeting_id_for(connection_id, event_id)
        if isinstance(item, RemovedEntry):
            before = kept.get(event_id)
            held = published.get(meeting_id)
            if before is not None and held is not None and held.live:
                # A deleted (or cancelled) 1:1 stays, flagged, for cadence history: from
                # then on it is kept as it was, cancelled (classified below).
                item = before.model_copy(update={"is_cancelled": True})
            else:
                out.drop_items.add(event_id)
                retract(meeting_id, event_id, RemovalReason.DELETED)
                return
        decision = classify(item, owner_addresses, team)
        form = kept_form(item, decision, list(owner_addresses), hasher)
        if form is None:
            out.drop_items.add(event_id)  # nothing kept (what was published of it stays)
        else:
            out.store_items[event_id] = form
        if not isinstance(decision, OneOnOne):
            retract(meeting_id, event_id, RemovalReason.NO_LONGER_ONE_ON_ONE)
            return
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

    for event_id, item in latest.items():
        out.seen.add(event_id)
        consider(event_id, item)
    out.seen.update(unchanged)
    if not full:
        return out
    for meeting_id, held in published.items():
        if not held.live or held.cancelled or held.event_id in out.seen:
            continue
        before = kept.get(held.event_id)
        if before is None:  # nothing kept to tell why: consumers drop it
            out.drop_items.add(held.event_id)
            retract(meeting_id, held.event_id, RemovalReason.OUT_OF_WINDOW)
        elif window is not None and not _overlaps(before, window):
            out.drop_items.add(held.event_id)
            out.forget.add(meeting_id)
        else:  # in the window, yet not listed: deleted while unwatched
            consider(held.event_id, RemovedEntry(id=held.event_id))
    return out


def _overlaps(event: GraphEvent, window: Window) -> bool:
    if event.start is None or event.end is None:
        return True  # can't tell: treat it as in the window
    return event.start.utc() < window.end and event.end.utc() > window.start
