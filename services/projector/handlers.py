"""The projector's seam: meeting and connection events into the read model, and the
queries behind the HTTP routes.

Each meeting event is one versioned write on its document, then the cadence of every pair
the meeting counted for (before and after the write) is computed again from the pair's
meetings. That recompute also runs for a stale or duplicate event: it is idempotent, and a
redelivery after a crash between the two writes then repairs the cadence document.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import ConnectionFailure

from services.projector.adapters.read_model import (
    CadenceStore,
    ConnectionStore,
    MeetingStore,
    MemberInfo,
    Pair,
    member_info,
)
from services.projector.domain.cadence import Cadence, MeetingTimes, compute_cadence
from services.projector.domain.merge import connection_write, meeting_tombstone, meeting_upsert
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


async def pair_cadence(meetings: MeetingStore, pair: Pair, now: datetime) -> PairCadence | None:
    """The pair's cadence relative to `now`; None when it has no live meeting left."""
    history = await meetings.pair_history(pair, now)
    if not history:
        return None
    cadence = compute_cadence((_times(doc) for doc in history), now)
    return PairCadence(pair=pair, member=member_info(history), cadence=cadence)


class ProjectorHandlers:
    def __init__(
        self,
        meetings: MeetingStore,
        cadence: CadenceStore,
        connections: ConnectionStore,
        clock: Clock = utc_now,
    ) -> None:
        self._meetings = meetings
        self._cadence = cadence
        self._connections = connections
        self._clock = clock

    async def on_meeting(self, message: MeetingUpserted | MeetingRemoved) -> None:
        async with _mongo_outage_is_retryable():
            if isinstance(message, MeetingUpserted):
                write = meeting_upsert(message.payload)
                pair_after: Pair | None = Pair(
                    message.payload.manager_id, message.payload.member.email.lower()
                )
            else:
                write = meeting_tombstone(message.payload)
                pair_after = None
            result = await self._meetings.apply(write)
            pairs = {p for p in (result.pair_before, pair_after) if p is not None}
            for pair in sorted(pairs, key=lambda p: (p.manager_id, p.member_email)):
                await self._refresh_cadence(pair)

    async def _refresh_cadence(self, pair: Pair) -> None:
        now = self._clock()
        computed = await pair_cadence(self._meetings, pair, now)
        if computed is None:
            await self._cadence.delete(pair)
        else:
            await self._cadence.put(pair, computed.member, computed.cadence, now)

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
        self,
        meetings: MeetingStore,
        cadence: CadenceStore,
        connections: ConnectionStore,
        clock: Clock = utc_now,
    ) -> None:
        self._meetings = meetings
        self._cadence = cadence
        self._connections = connections
        self.clock = clock

    async def one_on_ones(self, manager_id: str, start: datetime, end: datetime) -> list[Document]:
        return await self._meetings.in_range(manager_id, start, end)

    async def cadence(self, manager_id: str, now: datetime) -> list[PairCadence]:
        """Every pair the manager has, recomputed relative to `now`."""
        results = []
        for doc in await self._cadence.for_manager(manager_id):
            pair = Pair(doc["manager_id"], doc["member_email"])
            computed = await pair_cadence(self._meetings, pair, now)
            if computed is not None:
                results.append(computed)
        return results

    async def connection(self, user_id: str) -> dict[str, Any] | None:
        return await self._connections.get(connection_id_for(user_id))
