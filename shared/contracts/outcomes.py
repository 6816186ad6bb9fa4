"""What became of a command: `GET /v1/commands/{id}` answers from these."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from shared.contracts.commands import CommandKind
from shared.contracts.envelope import Contract, Envelope
from shared.contracts.user_errors import UserErrorCode


class CommandWarning(Contract):
    """Done, but not all of it: e.g. the meeting was made without the Teams link asked for."""

    code: UserErrorCode
    message: str = Field(max_length=500, description="The help page's words for the user.")
    detail: str | None = Field(default=None, max_length=1000, description="For operators.")


class CommandResult(Contract):
    command_id: str
    kind: CommandKind
    manager_id: str
    meeting_id: str | None = None
    graph_event_id: str | None = None
    ical_uid: str | None = None
    join_url: str | None = None
    warnings: list[CommandWarning] = Field(default_factory=list)
    completed_at: AwareDatetime


class CommandFailure(Contract):
    command_id: str
    kind: CommandKind
    manager_id: str
    meeting_id: str | None = None
    code: UserErrorCode
    message: str = Field(max_length=500, description="The help page's words for the user.")
    detail: str | None = Field(default=None, max_length=1000, description="For operators.")
    completed_at: AwareDatetime


class CommandSucceeded(Envelope):
    type: Literal["command.succeeded"] = "command.succeeded"
    payload: CommandResult


class CommandFailed(Envelope):
    type: Literal["command.failed"] = "command.failed"
    payload: CommandFailure
