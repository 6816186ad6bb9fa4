"""Accepting commands: check at the edge, publish, remember — and follow their outcomes.

A command is answered 202 only once the broker acknowledged its record. Its id is first
claimed (one insert: of two requests racing with one id, only one wins), then checked,
published, and marked accepted — so a status always names a published command (a claim
that isn't is not shown). Posting the same command again is harmless (202; re-published
only if the first attempt never confirmed its publish); reusing its id for another command
is refused, even when both arrive at once.

A roster is stored with one conditional write (the newest version wins) before it is
published: an older version than the stored one is refused with 409 and the current
version; the same version again (a retry) is published again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from services.ingress.commands.domain import (
    REUSED_ID,
    Rejection,
    check_connection,
    check_reschedule,
    check_schedule,
    fingerprint,
)
from services.ingress.commands.store import CommandStatusStore, RosterStore
from shared.connections.registry import ConnectionRegistry
from shared.contracts.commands import (
    CancelMeeting,
    CancelMeetingRequest,
    CommandKind,
    ConnectionCommandRequest,
    RescheduleMeeting,
    RescheduleMeetingRequest,
    ScheduleMeeting,
    ScheduleMeetingRequest,
    SyncNow,
)
from shared.contracts.connections import connection_id_for
from shared.contracts.envelope import Contract, Envelope
from shared.contracts.outcomes import CommandFailed, CommandSucceeded
from shared.contracts.roster import Roster, RosterUpdated, TeamMember
from shared.messaging.publisher import Publisher
from shared.mongo import Document


class Rejected(Exception):
    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.reason)
        self.rejection = rejection


class StaleRoster(Exception):
    def __init__(self, current_version: int) -> None:
        super().__init__(f"a newer roster is stored (version {current_version})")
        self.current_version = current_version


class CommandHandlers:
    def __init__(
        self,
        *,
        registry: ConnectionRegistry,
        statuses: CommandStatusStore,
        rosters: RosterStore,
        publisher: Publisher,
    ) -> None:
        self._registry = registry
        self._statuses = statuses
        self._rosters = rosters
        self._publisher = publisher

    # ------------------------------------------------------------------ commands
    async def schedule(self, request: ScheduleMeetingRequest) -> str:
        async def checks() -> Rejection | None:
            team = await self._rosters.team(request.manager_id)
            return check_schedule(request, team, datetime.now(UTC))

        return await self._accept(
            CommandKind.SCHEDULE, request, request.manager_id, ScheduleMeeting, checks
        )

    async def reschedule(self, request: RescheduleMeetingRequest) -> str:
        async def checks() -> Rejection | None:
            return check_reschedule(request, datetime.now(UTC))

        return await self._accept(
            CommandKind.RESCHEDULE, request, request.manager_id, RescheduleMeeting, checks
        )

    async def cancel(self, request: CancelMeetingRequest) -> str:
        return await self._accept(CommandKind.CANCEL, request, request.manager_id, CancelMeeting)

    async def sync_now(self, command_id: str, user_id: str) -> str:
        request = ConnectionCommandRequest(
            command_id=command_id, user_id=user_id, requested_at=datetime.now(UTC)
        )
        identity = request.model_copy(update={"requested_at": datetime.fromtimestamp(0, UTC)})
        return await self._accept(
            CommandKind.SYNC_NOW, request, user_id, SyncNow, writes=False, same_as=identity
        )

    async def status(self, command_id: str) -> Document | None:
        doc = await self._statuses.get(command_id)
        return None if doc is None or doc.get("state") == "claimed" else doc

    async def _accept(
        self,
        kind: CommandKind,
        request: ScheduleMeetingRequest
        | RescheduleMeetingRequest
        | CancelMeetingRequest
        | ConnectionCommandRequest,
        manager_id: str,
        message: type[Envelope],
        checks: Callable[[], Awaitable[Rejection | None]] | None = None,
        *,
        writes: bool = True,
        same_as: Contract | None = None,
    ) -> str:
        mark = fingerprint(same_as or request)
        known = await self._statuses.claim(request.command_id, kind.value, manager_id, mark)
        if known is not None:
            if known.get("fingerprint") not in (None, mark) or known.get("kind") != kind.value:
                raise Rejected(REUSED_ID)
            if known.get("state") != "claimed":
                return request.command_id  # already accepted and published
            # claimed by an attempt that didn't confirm its publish: publish (again)
        connection_id = connection_id_for(manager_id)
        rejection = check_connection(await self._registry.get(connection_id), writes=writes)
        if rejection is None and checks is not None:
            rejection = await checks()
        if rejection is not None:
            await self._statuses.release(request.command_id, mark)
            raise Rejected(rejection)
        record = message.build(
            key=connection_id, payload=request, correlation_id=request.command_id
        )
        await self._publisher.publish(record)
        await self._statuses.accepted(request.command_id, kind.value, manager_id, mark)
        return request.command_id

    # ------------------------------------------------------------------ rosters
    async def put_roster(self, manager_id: str, members: list[TeamMember], version: int) -> None:
        """Raises StaleRoster when a newer version (or another roster of this version) is
        stored."""
        roster = Roster(
            manager_id=manager_id, members=members, version=version, updated_at=datetime.now(UTC)
        )
        if not await self._rosters.put(roster):
            current = await self._rosters.get(manager_id)
            if current is not None and (
                current.version != version or current.members != roster.members
            ):
                raise StaleRoster(current.version)
            # the same roster again (a retry after a failed publish): publish it again
        await self._publisher.publish(RosterUpdated.build(key=manager_id, payload=roster))

    async def roster(self, manager_id: str) -> Roster | None:
        return await self._rosters.get(manager_id)

    # ------------------------------------------------------------------ consumers
    async def on_outcome(self, outcome: CommandSucceeded | CommandFailed) -> None:
        await self._statuses.completed(outcome)

    async def on_roster(self, update: RosterUpdated) -> None:
        await self._rosters.put(update.payload)
