"""Checks a command must pass at the edge, before anything is published (pure).

A rejected command answers 4xx with a stable code, the help page's words and a reason, and
leaves nothing behind. What only Outlook can tell (is the event SMVue's, does it still
exist) is the writer's to decide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from shared.contracts.commands import RescheduleMeetingRequest, ScheduleMeetingRequest
from shared.contracts.connections import ConnectionSnapshot, ConnectionState
from shared.contracts.envelope import Contract
from shared.contracts.user_errors import UserErrorCode, user_message


@dataclass(frozen=True)
class Rejection:
    status: int
    code: UserErrorCode
    reason: str

    def detail(self) -> dict[str, str]:
        return {"code": self.code.value, "message": user_message(self.code), "reason": self.reason}


def check_connection(connection: ConnectionSnapshot | None, *, writes: bool) -> Rejection | None:
    if connection is None or connection.state in (
        ConnectionState.DISCONNECTED,
        ConnectionState.FAILED,
    ):
        return Rejection(409, UserErrorCode.CALENDAR_NOT_CONNECTED, "no connected Outlook Calendar")
    if connection.state is ConnectionState.REAUTHORIZATION_REQUIRED:
        return Rejection(
            409, UserErrorCode.REAUTHORIZATION_REQUIRED, "the connection must be reauthorized"
        )
    if writes and not connection.can_write:
        return Rejection(
            409, UserErrorCode.INSUFFICIENT_PERMISSIONS, "Calendars.ReadWrite was not granted"
        )
    return None


def _in_the_past(moment: datetime, time_zone: str | None, now: datetime) -> bool:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(time_zone or "UTC"))
    return aware.astimezone(UTC) <= now


def check_schedule(
    request: ScheduleMeetingRequest, team: Collection[str], now: datetime
) -> Rejection | None:
    """`team`: the manager's member addresses, lower-cased."""
    if request.member_email.lower() not in team:
        return Rejection(
            422, UserErrorCode.INVALID_COMMAND, "the member is not on this manager's team"
        )
    if _in_the_past(request.start, request.time_zone, now):
        return Rejection(422, UserErrorCode.INVALID_COMMAND, "start is not in the future")
    return None


def check_reschedule(request: RescheduleMeetingRequest, now: datetime) -> Rejection | None:
    if request.new_start is None and request.meeting_type is None:
        return Rejection(
            422, UserErrorCode.INVALID_COMMAND, "give a new start, a new meeting type, or both"
        )
    if request.new_start is not None and _in_the_past(request.new_start, request.time_zone, now):
        return Rejection(422, UserErrorCode.INVALID_COMMAND, "new_start is not in the future")
    return None


def fingerprint(request: Contract) -> str:
    """What makes two posts "the same command" (the command id reused for another body is
    a client bug, answered 409)."""
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


REUSED_ID = Rejection(
    409, UserErrorCode.INVALID_COMMAND, "command id already used for a different command"
)
