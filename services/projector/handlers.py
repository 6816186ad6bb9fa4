"""The projector's seam: meeting and connection events into the read model, and the
queries behind the HTTP routes.

Meeting events come in batches (the consumer engine's `batch=True`, one partition's
records at a time): each becomes a versioned write, the batch is coalesced to one write per
meeting (`merge.coalesce`, same effect as applying them in order) and applied as one
unordered bulk write together with the other partitions' batches that arrive within the
linger (`adapters/grouped.py`, group commit) — one MongoDB round trip per group, two when
it carries a writer's sticky flag. Versions only grow, so a redelivered or replayed batch
changes nothing, and the offsets are committed after the batch is applied (the engine's
watermark).

Cadence is not stored: it is derived from `one_on_ones` when it is asked for (`Queries`),
relative to the time of the request (ADR 0007).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import ConnectionFailure

from services.projector.adapters.grouped import GroupedWrites
from services.projector.adapters.read_model import (
    ConnectionStore,
    MeetingStore,
    MemberInfo,
    Pair,
    member_info,
)
from services.projector.domain.cadence import Cadence, MeetingTimes, compute_cadence
from services.projector.domain.merge import (
    VersionedWrite,
    coalesce,
    connection_write,
    meeting_tombstone,
    meeting_upsert,
)
from shared.contracts.connections import (
    ConnectionAttemptFailed,
    ConnectionConnected,
    ConnectionDisconnected,
    ConnectionStatusChanged,
    connection_id_for,
)
from shared.contracts.meetings import MeetingRemoved, MeetingUpserted
from shared.messaging.failures import Retryable
from shared.mongo import Document

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@contextlib.asynccontextmanager
async def _mongo_outage_is_retryable() -> AsyncIterator[None]:
    """MongoDB briefly unreachable: retry the same record rather than dead-letter it."""
    try:
        yield
    except ConnectionFailure as exc:
        raise Retryable(f"MongoDB unavailable: {type(exc).__name__}") from exc


@dataclass(frozen=True)
class PairCadence:
    pair: Pair
    member: MemberInfo
    cadence: Cadence


def _times(doc: Document) -> MeetingTimes:
    return MeetingTimes(
        start=_utc(doc["start"]), end=_utc(doc["end"]), is_cancelled=bool(doc["is_cancelled"])
    )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def pair_cadence(pair: Pair, history: list[Document], now: datetime) -> PairCadence | None:
    """The pair's cadence relative to `now` from its history (`MeetingStore.manager_history`);
    None when it has no live meeting left."""
    if not history:
        return None
    cadence = compute_cadence((_times(doc) for doc in history), now)
    return PairCadence(pair=pair, member=member_info(history), cadence=cadence)


def meeting_write(message: MeetingUpserted | MeetingRemoved) -> VersionedWrite:
    if isinstance(message, MeetingUpserted):
        return meeting_upsert(message.payload)
    return meeting_tombstone(message.payload)


class ProjectorHandlers:
    def __init__(
        self, meetings: MeetingStore, connections: ConnectionStore, *, linger: float = 0.0
    ) -> None:
        self._meetings = GroupedWrites(meetings.apply, linger=linger)
        self._connections = connections

    async def on_meetings(self, messages: list[MeetingUpserted | MeetingRemoved]) -> None:
        """A batch of one partition's meeting records, in offset order; applied with the
        batches of other partitions that arrive within `linger` (one bulk write)."""
        async with _mongo_outage_is_retryable():
            await self._meetings.apply(coalesce(meeting_write(m) for m in messages))

    async def on_connection(
        self,
        message: ConnectionConnected
        | ConnectionStatusChanged
        | ConnectionDisconnected
        | ConnectionAttemptFailed,
    ) -> None:
        async with _mongo_outage_is_retryable():
            await self._connections.apply(connection_write(message.payload, message.type))


class Queries:
    """What the HTTP routes read: the dashboard, cadence relative to now, the card."""

    def __init__(
        self, meetings: MeetingStore, connections: ConnectionStore, clock: Clock = utc_now
    ) -> None:
        self._meetings = meetings
        self._connections = connections
        self.clock = clock

    async def one_on_ones(self, manager_id: str, start: datetime, end: datetime) -> list[Document]:
        return await self._meetings.in_range(manager_id, start, end)

    async def cadence(self, manager_id: str, now: datetime) -> list[PairCadence]:
        """Every pair the manager has a live meeting with, by member e-mail, computed
        relative to `now` (two queries, whatever the number of pairs)."""
        history = await self._meetings.manager_history(manager_id, now)
        results = []
        for member_email in sorted(history):
            computed = pair_cadence(Pair(manager_id, member_email), history[member_email], now)
            if computed is not None:
                results.append(computed)
        return results

    async def connection(self, user_id: str) -> dict[str, Any] | None:
        return await self._connections.get(connection_id_for(user_id))
