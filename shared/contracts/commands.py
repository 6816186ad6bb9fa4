"""Commands from the SMVue backend: schedule / reschedule / cancel 1:1s, Sync Now, disconnect.

Accepted on the ingress's HTTP API or produced straight onto the command topics. The
command id is the idempotency key: the same command twice has one effect.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, AwareDatetime, Field, field_validator

from shared.contracts.envelope import Contract, EmailAddress, Envelope


class MeetingType(StrEnum):
    """The help page: duration is based on the meeting type (30 or 60 minutes)."""

    SHORT = "30min"
    LONG = "60min"

    @property
    def minutes(self) -> int:
        return 30 if self is MeetingType.SHORT else 60


def _check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


_COMMAND_ID = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


class ScheduleMeetingRequest(Contract):
    command_id: str = _COMMAND_ID
    manager_id: str = Field(min_length=1, max_length=128)
    member_name: str = Field(min_length=1, max_length=256)
    member_email: EmailAddress
    start: datetime = Field(description="Wall-clock start in `time_zone` (an offset is honoured).")
    time_zone: str = Field(max_length=100, description="IANA name, e.g. Europe/Paris.")
    meeting_type: MeetingType
    add_teams_link: bool = False
    prep_url: AnyHttpUrl = Field(description="Link to the meeting prep in SMVue (the body).")

    _tz = field_validator("time_zone")(_check_time_zone)


class RescheduleMeetingRequest(Contract):
    command_id: str = _COMMAND_ID
    manager_id: str = Field(min_length=1, max_length=128)
    meeting_id: str = Field(min_length=1, max_length=128)
    new_start: datetime | None = None
    time_zone: str | None = Field(default=None, max_length=100)
    meeting_type: MeetingType | None = None

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else _check_time_zone(value)


class CancelMeetingRequest(Contract):
    command_id: str = _COMMAND_ID
    manager_id: str = Field(min_length=1, max_length=128)
    meeting_id: str = Field(min_length=1, max_length=128)
    message: str | None = Field(default=None, max_length=2000)


class ScheduleMeeting(Envelope):
    type: Literal["command.schedule_meeting"] = "command.schedule_meeting"
    payload: ScheduleMeetingRequest


class RescheduleMeeting(Envelope):
    type: Literal["command.reschedule_meeting"] = "command.reschedule_meeting"
    payload: RescheduleMeetingRequest


class CancelMeeting(Envelope):
    type: Literal["command.cancel_meeting"] = "command.cancel_meeting"
    payload: CancelMeetingRequest


class ConnectionCommandRequest(Contract):
    command_id: str = _COMMAND_ID
    user_id: str = Field(min_length=1, max_length=128)
    requested_at: AwareDatetime


class SyncNow(Envelope):
    """Settings > Integrations > Sync Now: a delta round at once."""

    type: Literal["command.sync_now"] = "command.sync_now"
    payload: ConnectionCommandRequest


class DisconnectCalendar(Envelope):
    type: Literal["command.disconnect"] = "command.disconnect"
    payload: ConnectionCommandRequest


class CommandKind(StrEnum):
    SCHEDULE = "schedule"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    SYNC_NOW = "sync_now"
    DISCONNECT = "disconnect"
