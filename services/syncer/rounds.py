"""One delta round for one mailbox: fetch, parse through the allow-list, decide 1:1s,
publish meeting events, and only then save the new deltaLink (at-least-once, no loss)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.syncer.adapters.graph_calendar import GraphCalendar
from services.syncer.adapters.store import SyncerStore
from services.syncer.domain.graph_event import GraphEvent, RemovedEntry, parse_delta_item
from services.syncer.domain.meetings import content_hash, snapshot, version_for
from services.syncer.domain.one_on_one import OneOnOne, TeamMemberRef, classify
from services.syncer.domain.window import Window, needs_new_round, window_for
from services.syncer.settings import SyncerSettings
from shared.audit import AuditLog
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.contracts.envelope import Envelope
from shared.contracts.meetings import (
    MeetingRemoval,
    MeetingRemoved,
    MeetingUpserted,
    RemovalReason,
    meeting_id_for,
)
from shared.graph.errors import GraphGone
from shared.messaging.publisher import Publisher
from shared.observability.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class RoundOutcome:
    upserted: int
    removed: int
    pages: int


def team_of(roster: dict[str, Any] | None) -> dict[str, TeamMemberRef]:
    if not roster:
        return {}
    return {
        str(m["email"]).lower(): TeamMemberRef(m["member_id"], m["email"], m["display_name"])
        for m in roster.get("members", [])
    }


class RoundRunner:
    def __init__(
        self,
        store: SyncerStore,
        graph: GraphCalendar,
        publisher: Publisher,
        audit: AuditLog,
        settings: SyncerSettings,
    ) -> None:
        self._store = store
        self._graph = graph
        self._publisher = publisher
        self._audit = audit
        self._settings = settings

    async def run(
        self, connection_id: str, *, cause: Envelope | None = None
    ) -> RoundOutcome | None:
        state = await self._store.state(connection_id)
        if state is None or not state.get("active"):
            return None
        now = datetime.now(UTC)
        wanted = window_for(now, self._settings.past_days, self._settings.future_days)
        current = (
            Window(state["window_start"], state["window_end"])
            if state.get("window_start")
            else None
        )
        delta_link = state.get("delta_link") if not needs_new_round(current, wanted) else None
        await self._store.set_state(connection_id, round_started_at=now)
        try:
            result = await self._graph.delta_round(
                connection_id, delta_link, wanted, self._settings.page_size
            )
        except GraphGone:
            # The delta token expired: a full resync of the window, not a loop.
            log.info("delta token gone: full resync", connection_id=connection_id)
            delta_link = None
            result = await self._graph.delta_round(
                connection_id, None, wanted, self._settings.page_size
            )
        full = delta_link is None
        outcome = await self._apply(state, result.items, full=full, now=now, cause=cause)
        await self._store.set_state(
            connection_id,
            delta_link=result.delta_link,
            window_start=wanted.start,
            window_end=wanted.end,
            last_round_at=now,
        )
        await self._audit.record(
            AuditOperation.DELTA_ROUND,
            AuditOutcome.SUCCEEDED,
            connection_id=connection_id,
            user_id=state["user_id"],
            graph_request_id=result.request_ids[-1] if result.request_ids else None,
            detail=f"{'full' if full else 'incremental'} round: {result.pages} page(s), "
            f"{len(result.items)} item(s), {outcome.upserted} upserted, {outcome.removed} removed",
            cause=cause,
        )
        return RoundOutcome(outcome.upserted, outcome.removed, result.pages)

    async def reevaluate(
        self, connection_id: str, *, cause: Envelope | None = None
    ) -> RoundOutcome:
        """Re-decides every stored event (after a roster change), without calling Graph."""
        state = await self._store.state(connection_id)
        if state is None or not state.get("active"):
            return RoundOutcome(0, 0, 0)
        items = [doc["event"] for doc in await self._store.items(connection_id)]
        return await self._apply(state, items, full=True, now=datetime.now(UTC), cause=cause)

    async def _apply(
        self,
        state: dict[str, Any],
        raw_items: list[dict[str, Any]],
        *,
        full: bool,
        now: datetime,
        cause: Envelope | None,
    ) -> RoundOutcome:
        connection_id = str(state["_id"])
        manager_id = str(state["user_id"])
        owner_addresses = [a.lower() for a in state.get("owner_addresses", [])]
        team = team_of(await self._store.roster(manager_id))
        published = await self._store.published(connection_id)
        seen_events: set[str] = set()
        out: list[Envelope] = []
        to_mark: list[tuple[str, str, str]] = []
        to_unmark: list[str] = []
        version = version_for(now, None)

        def retract(meeting_id: str, event_id: str, reason: RemovalReason) -> None:
            out.append(
                MeetingRemoved.build(
                    key=meeting_id,
                    cause=cause,
                    payload=MeetingRemoval(
                        meeting_id=meeting_id,
                        connection_id=connection_id,
                        manager_id=manager_id,
                        graph_event_id=event_id,
                        reason=reason,
                        version=version,
                    ),
                )
            )
            to_unmark.append(meeting_id)

        for raw in raw_items:
            item = parse_delta_item(raw)
            meeting_id = meeting_id_for(connection_id, item.id)
            seen_events.add(item.id)
            if isinstance(item, RemovedEntry):
                await self._store.drop_item(connection_id, item.id)
                if meeting_id in published:
                    retract(meeting_id, item.id, RemovalReason.DELETED)
                continue
            await self._store.put_item(connection_id, item.id, _allowed_json(item))
            decision = _classify(item, owner_addresses, team)
            if isinstance(decision, OneOnOne):
                meeting = snapshot(
                    item,
                    decision,
                    connection_id=connection_id,
                    manager_id=manager_id,
                    version=version_for(now, item.last_modified),
                )
                digest = content_hash(meeting)
                if published.get(meeting_id, {}).get("hash") != digest:
                    out.append(MeetingUpserted.build(key=meeting_id, payload=meeting, cause=cause))
                    to_mark.append((meeting_id, item.id, digest))
            elif meeting_id in published:
                retract(meeting_id, item.id, RemovalReason.NO_LONGER_ONE_ON_ONE)

        if full:  # what a full round did not return is no longer in the window
            for meeting_id, doc in published.items():
                if doc["event_id"] not in seen_events and meeting_id not in to_unmark:
                    await self._store.drop_item(connection_id, doc["event_id"])
                    retract(meeting_id, doc["event_id"], RemovalReason.OUT_OF_WINDOW)

        await self._publisher.publish_all(out)  # acknowledged by Kafka before state moves on
        for meeting_id, event_id, digest in to_mark:
            await self._store.mark_published(meeting_id, connection_id, event_id, digest)
        for meeting_id in to_unmark:
            await self._store.unmark_published(meeting_id)
        upserted = sum(isinstance(e, MeetingUpserted) for e in out)
        return RoundOutcome(upserted, len(out) - upserted, 0)


def _classify(event: GraphEvent, owner_addresses: list[str], team: dict[str, TeamMemberRef]) -> Any:
    decision: Any = None
    for address in owner_addresses or [""]:
        decision = classify(event, address, team)
        if isinstance(decision, OneOnOne):
            return decision
    return decision


def _allowed_json(event: GraphEvent) -> dict[str, Any]:
    """Allowed fields only, in Graph's own names, so a re-parse gives the same event."""
    return event.model_dump(mode="json", by_alias=True, exclude_none=True)
