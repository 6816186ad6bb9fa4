"""One delta round for one mailbox: fetch every page, parse through the allow-list, decide
1:1s, publish meeting events, and only then save the new deltaLink (at-least-once: a crash
before that repeats the round, and consumers drop what they already have). The round
returns the state to save (`RoundOutcome.save`); the worker saves it in the write that
finishes the job (`SyncerStore.finish`), after everything the round published."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.syncer.adapters.graph_calendar import GraphCalendar
from services.syncer.adapters.store import SyncerStore
from services.syncer.domain import kept
from services.syncer.domain.kept import AddressHasher
from services.syncer.domain.one_on_one import TeamMemberRef
from services.syncer.domain.reconcile import Plan, Published, plan_round
from services.syncer.domain.window import Window, needs_new_round, window_for
from services.syncer.settings import SyncerSettings
from shared.audit import AuditLog
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.contracts.envelope import Envelope
from shared.contracts.meetings import (
    MeetingRemoved,
    MeetingUpserted,
    meeting_id_for,
    syncer_record_key,
)
from shared.graph.errors import GraphError, GraphGone
from shared.graph.event import GraphEvent, RemovedEntry, parse_delta_item
from shared.messaging.publisher import Publisher
from shared.observability.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class RoundOutcome:
    upserted: int
    removed: int
    pages: int
    full: bool
    items: int = 0  # events (and removals) the round listed
    one_on_ones: int = 0  # of them, 1:1s
    # The connection's state after the round (deltaLink, window, last round): saved by
    # the caller once the round's effects are out, never before.
    save: dict[str, Any] = field(default_factory=dict)


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
        *,
        hasher: AddressHasher,
    ) -> None:
        self._hasher = hasher
        self._store = store
        self._graph = graph
        self._publisher = publisher
        self._audit = audit
        self._settings = settings
        self._full_rounds = asyncio.Semaphore(settings.max_parallel_full_rounds)

    def wanted_window(self, now: datetime) -> Window:
        return window_for(now, self._settings.past_days, self._settings.future_days)

    async def run(self, state: dict[str, Any], *, cause: Envelope | None = None) -> RoundOutcome:
        connection_id = str(state["_id"])
        now = datetime.now(UTC)
        clock = time.monotonic()
        wanted = self.wanted_window(now)
        current = (
            Window(_aware(state["window_start"]), _aware(state["window_end"]))
            if state.get("window_start")
            else None
        )
        # A deltaLink encodes its window: a moved window starts a fresh (full) round.
        delta_link = None if needs_new_round(current, wanted) else state.get("delta_link")
        # `round_started_at` (notices received before it need no round of their own) was
        # set as the worker took the lease (`SyncerStore.take`), or by the connect.
        if delta_link is None:
            # A full round holds the window's parsed events until it is applied: only so
            # many at once per process, so memory stays bounded when many managers connect
            # together (the database, not Graph, bounds an import's speed anyway).
            async with self._full_rounds:
                return await self._run(state, connection_id, now, clock, wanted, None, cause)
        return await self._run(state, connection_id, now, clock, wanted, delta_link, cause)

    async def _run(
        self,
        state: dict[str, Any],
        connection_id: str,
        now: datetime,
        clock: float,
        wanted: Window,
        delta_link: str | None,
        cause: Envelope | None,
    ) -> RoundOutcome:
        try:
            try:
                result = await self._graph.delta_round(
                    connection_id, delta_link, wanted, self._settings.page_size
                )
            except GraphGone:
                if delta_link is None:
                    raise
                # The delta token expired: one full resync of the window, not a loop.
                log.info("delta token gone: full resync", connection_id=connection_id)
                delta_link = None
                result = await self._graph.delta_round(
                    connection_id, None, wanted, self._settings.page_size
                )
        except GraphError as exc:
            await self._store.set_state(
                connection_id,
                last_round_failure={"at": now, "status": exc.status, "code": exc.code},
            )
            await self._audit.record(
                AuditOperation.DELTA_ROUND,
                AuditOutcome.FAILED,
                connection_id=connection_id,
                user_id=state.get("user_id"),
                http_status=exc.status,
                graph_request_id=exc.request_id,
                detail=exc.code,
                cause=cause,
            )
            raise
        full = delta_link is None
        items = result.items  # parsed page by page: bodies dropped as each page came
        plan, absent, left_out = await self._plan(state, items, full=full, now=now, window=wanted)
        await self._apply(state, plan, cause=cause, absent=absent, left_out=left_out)
        save = {
            "delta_link": result.delta_link,
            "window_start": wanted.start,
            "window_end": wanted.end,
            "last_round_at": now,
            "last_round": {  # what `smvue-sync connections show` tells about the last round
                "kind": "full" if full else "incremental",
                "items": len(items),
                "pages": result.pages,
                "seconds": round((datetime.now(UTC) - now).total_seconds(), 3),
            },
        }
        await self._audit.record(
            AuditOperation.DELTA_ROUND,
            AuditOutcome.SUCCEEDED,
            connection_id=connection_id,
            user_id=state.get("user_id"),
            graph_request_id=result.request_ids[-1] if result.request_ids else None,
            detail=f"{'full' if full else 'incremental'} round: {result.pages} page(s), "
            f"{len(items)} item(s), {len(plan.upserts)} upserted, "
            f"{len(plan.removals)} removed",
            cause=cause,
        )
        log.info(
            "sync round",
            connection_id=connection_id,
            kind="full" if full else "incremental",
            pages=result.pages,
            items=len(items),
            one_on_ones=plan.one_on_ones,
            meetings_published=len(plan.upserts) + len(plan.removals),
            duration_ms=round((time.monotonic() - clock) * 1000),
        )
        return RoundOutcome(
            len(plan.upserts),
            len(plan.removals),
            result.pages,
            full,
            items=len(items),
            one_on_ones=plan.one_on_ones,
            save=save,
        )

    async def reevaluate(
        self, state: dict[str, Any], *, cause: Envelope | None = None
    ) -> RoundOutcome:
        """Re-decides the stored events after a roster change. The 1:1s are kept whole;
        of an event with one other person only a hash of their address is kept: when the
        new team has that address, the event is read from Graph again (only then). Nothing
        else can become a 1:1 by a roster change."""
        connection_id = str(state["_id"])
        team = await self._team(state)
        items: list[GraphEvent | RemovedEntry] = []
        unchanged: set[str] = set()
        for doc in await self._store.items(connection_id):
            event_id = str(doc["event_id"])
            kind = doc.get("kind", kept.ONE_ON_ONE if "event" in doc else kept.NEVER)
            if kind in (kept.ONE_ON_ONE, kept.CANCELLED):
                items.append(parse_delta_item(doc["event"]))
            elif kind == kept.CANDIDATE and self._hasher.matches(doc["other"], sorted(team)):
                fresh = await self._graph.event(connection_id, event_id)
                items.append(
                    RemovedEntry(id=event_id) if fresh is None else parse_delta_item(fresh)
                )
            else:
                unchanged.add(event_id)
        plan, _, _ = await self._plan(
            state, items, full=True, now=datetime.now(UTC), unchanged=unchanged
        )
        await self._apply(state, plan, cause=cause)  # what it did not look at stays
        return RoundOutcome(len(plan.upserts), len(plan.removals), 0, True)

    async def _plan(
        self,
        state: dict[str, Any],
        items: list[Any],
        *,
        full: bool,
        now: datetime,
        unchanged: set[str] | None = None,
        window: Window | None = None,
    ) -> tuple[Plan, set[str], set[str]]:
        """The round's plan; the event ids it names that have no calendar item yet (looked
        up in the same query: their items can be inserted); and, of a full round, the
        connection's items it neither keeps nor drops (it did not list them: their kept
        form goes)."""
        connection_id = str(state["_id"])
        manager_id = str(state["user_id"])
        # Only the items this round names (a full round: all of the connection's, the
        # live meetings it may have to retract among them): not every meeting ever
        # published. One query: what is kept of each event and what was published of it
        # come in the same document.
        entries = await self._store.entries(
            connection_id, sorted({item.id for item in items}), every=full
        )
        published: dict[str, Published] = {
            str(held["meeting_id"]): Published(
                event_id=event_id,
                version=int(held.get("version", 0)),
                content_hash=held.get("hash"),
                live=bool(held.get("live", True)),
                cancelled=bool(held.get("cancelled")),
            )
            for event_id, doc in entries.items()
            if (held := doc.get("published")) is not None
        }
        # Graph's calendarView delta lists an event moved out of the window as removed, as
        # it lists a deletion: a live 1:1 listed so is read again. Still there, it is what
        # the round lists (moved: published at its new time; no longer followed after the
        # next full round); gone, it is published as cancelled, from what is kept — as is
        # one a full round of the window does not list, unless it left the window.
        removed_live = {
            item.id
            for item in items
            if isinstance(item, RemovedEntry)
            and (held := published.get(meeting_id_for(connection_id, item.id))) is not None
            and held.live
        }
        fresh = await asyncio.gather(
            *(self._graph.event(connection_id, event_id) for event_id in sorted(removed_live))
        )
        still_there = [parse_delta_item(doc) for doc in fresh if doc is not None]
        items = [*items, *still_there]  # the last listing of an event in a round wins
        removed_live -= {event.id for event in still_there}
        listed = {item.id for item in items} | set(unchanged or ())
        gone_live = removed_live | {
            held.event_id
            for held in published.values()
            if full and held.live and not held.cancelled and held.event_id not in listed
        }
        kept_one_on_ones = {
            event_id: GraphEvent.model_validate(entries[event_id]["event"])
            for event_id in sorted(gone_live)
            if "event" in entries.get(event_id, {})
        }
        absent = {item.id for item in items} - set(entries)
        plan = plan_round(
            items,
            published,
            connection_id=connection_id,
            manager_id=manager_id,
            owner_addresses=state.get("owner_addresses", []),
            team=await self._team(state),
            now=now,
            full=full,
            hasher=self._hasher,
            unchanged=unchanged or (),
            kept_one_on_ones=kept_one_on_ones,
            window=window,
        )
        left_out = set(entries) - set(plan.store_items) - plan.drop_items if full else set()
        return plan, absent, left_out

    async def _team(self, state: dict[str, Any]) -> dict[str, TeamMemberRef]:
        """The manager's team: the roster copy in the sync state (kept current by the
        roster handler, `SyncerStore.copy_roster`), or — for a state without one yet —
        the `rosters` collection, copied into the state for the next rounds."""
        if "roster_version" in state:
            return team_of({"members": state.get("roster") or []})
        doc = await self._store.roster(str(state["user_id"]))
        if doc is not None:
            await self._store.copy_roster(str(state["_id"]), doc["members"], int(doc["version"]))
        return team_of(doc)

    async def _apply(
        self,
        state: dict[str, Any],
        plan: Plan,
        *,
        cause: Envelope | None,
        absent: set[str] | None = None,
        left_out: set[str] | None = None,
    ) -> None:
        connection_id = str(state["_id"])
        out: list[Envelope] = [
            MeetingUpserted.build(
                key=syncer_record_key(meeting.meeting_id), payload=meeting, cause=cause
            )
            for meeting, _ in plan.upserts
        ]
        out += [
            MeetingRemoved.build(
                key=syncer_record_key(removal.meeting_id), payload=removal, cause=cause
            )
            for removal in plan.removals
        ]
        await self._publisher.publish_all(out)  # acknowledged by Kafka before state moves on
        marks: list[tuple[str, str, int, str | None, bool]] = [
            (
                meeting.meeting_id,
                meeting.graph_event_id,
                meeting.version,
                digest,
                # kept as cancelled (the API lists it, flagged): no full round retracts it
                plan.store_items.get(meeting.graph_event_id, {}).get("kind") == kept.CANCELLED,
            )
            for meeting, digest in plan.upserts
        ]
        marks += [
            (removal.meeting_id, removal.graph_event_id, removal.version, None, False)
            for removal in plan.removals
        ]
        await self._store.apply_round(
            connection_id,
            published=marks,
            put_items=plan.store_items,
            drop_items=plan.drop_items,
            left_out=left_out or (),  # the window's whole content was listed: not these
            forget=plan.forget,
            absent=absent or (),
        )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
