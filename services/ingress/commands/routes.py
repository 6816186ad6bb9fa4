"""HTTP routes of the command API (service-authenticated, for the SMVue backend only)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from services.ingress.commands.handlers import CommandHandlers, Rejected, StaleRoster
from shared.contracts.commands import (
    CancelMeetingRequest,
    RescheduleMeetingRequest,
    ScheduleMeetingRequest,
)
from shared.contracts.roster import Roster, TeamMember
from shared.security.json_body import require_json_body

ID = r"^[A-Za-z0-9._:@-]{1,128}$"


class CommandAccepted(BaseModel):
    command_id: str
    status_url: str


class SyncNowRequest(BaseModel):
    command_id: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    user_id: str = Field(min_length=1, max_length=128, pattern=ID)


class CommandStatus(BaseModel):
    command_id: str
    kind: str
    state: str = Field(description="accepted | succeeded | failed")
    result: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Succeeded, but not all of it (e.g. `teams_link_unavailable`).",
    )
    failure: dict[str, Any] | None = None
    accepted_at: datetime | None = None
    completed_at: datetime | None = None


class RosterRequest(BaseModel):
    members: list[TeamMember] = Field(max_length=1000)
    version: int = Field(ge=0, description="Grows with every roster change.")


def _handlers(request: Request) -> CommandHandlers:
    handlers: CommandHandlers = request.app.state.commands
    return handlers


Handlers = Annotated[CommandHandlers, Depends(_handlers)]


def _accepted(command_id: str) -> CommandAccepted:
    return CommandAccepted(command_id=command_id, status_url=f"/v1/commands/{command_id}")


def command_router(auth: Callable[..., object]) -> APIRouter:
    router = APIRouter(
        dependencies=[Depends(auth), Depends(require_json_body)],
        tags=["commands"],
        responses={415: {"description": "The body is not JSON (Content-Type)."}},
    )

    @router.post("/v1/commands/schedule", status_code=202, response_model=CommandAccepted)
    async def schedule(body: ScheduleMeetingRequest, handlers: Handlers) -> CommandAccepted:
        """Schedule a 1:1 on the manager's Outlook calendar (outcome: GET status_url)."""
        return _accepted(await _or_4xx(handlers.schedule(body)))

    @router.post("/v1/commands/reschedule", status_code=202, response_model=CommandAccepted)
    async def reschedule(body: RescheduleMeetingRequest, handlers: Handlers) -> CommandAccepted:
        """Move a 1:1 SMVue scheduled, and/or change its meeting type."""
        return _accepted(await _or_4xx(handlers.reschedule(body)))

    @router.post("/v1/commands/cancel", status_code=202, response_model=CommandAccepted)
    async def cancel(body: CancelMeetingRequest, handlers: Handlers) -> CommandAccepted:
        """Cancel a 1:1 SMVue scheduled; attendees get the cancellation and message."""
        return _accepted(await _or_4xx(handlers.cancel(body)))

    @router.post("/v1/commands/sync-now", status_code=202, response_model=CommandAccepted)
    async def sync_now(body: SyncNowRequest, handlers: Handlers) -> CommandAccepted:
        """Settings > Integrations > Sync Now: a delta round at once."""
        return _accepted(await _or_4xx(handlers.sync_now(body.command_id, body.user_id)))

    @router.get("/v1/commands/{command_id}", response_model=CommandStatus)
    async def status(command_id: str, handlers: Handlers) -> CommandStatus:
        """What became of a command: accepted, then succeeded or failed (with a code)."""
        doc = await handlers.status(command_id)
        if doc is None:
            raise HTTPException(404, "unknown command id")
        return CommandStatus(
            command_id=str(doc["_id"]),
            kind=doc.get("kind", ""),
            state=doc.get("state", "accepted"),
            result=doc.get("result"),
            warnings=list((doc.get("result") or {}).get("warnings") or []),
            failure=doc.get("failure"),
            accepted_at=doc.get("accepted_at"),
            completed_at=doc.get("completed_at"),
        )

    @router.put("/v1/managers/{manager_id}/roster", status_code=202)
    async def put_roster(
        manager_id: str, body: RosterRequest, handlers: Handlers
    ) -> dict[str, Any]:
        """The manager's whole team as it is now: who counts for 1:1s. An older version than
        the stored one is refused with 409 and `current_version`."""
        _check_id(manager_id)
        try:
            await handlers.put_roster(manager_id, body.members, body.version)
        except StaleRoster as exc:
            raise HTTPException(
                409,
                {
                    "code": "stale_roster_version",
                    "message": str(exc),
                    "current_version": exc.current_version,
                },
            ) from exc
        return {"manager_id": manager_id, "version": body.version}

    @router.get("/v1/managers/{manager_id}/roster", response_model=Roster)
    async def get_roster(manager_id: str, handlers: Handlers) -> Roster:
        _check_id(manager_id)
        roster = await handlers.roster(manager_id)
        if roster is None:
            raise HTTPException(404, "no roster for this manager")
        return roster

    return router


async def _or_4xx(accepting: Any) -> str:
    try:
        command_id: str = await accepting
    except Rejected as exc:
        raise HTTPException(exc.rejection.status, exc.rejection.detail()) from exc
    return command_id


def _check_id(value: str) -> None:
    if not re.fullmatch(ID, value):
        raise HTTPException(422, "ids are 1-128 characters of [A-Za-z0-9._:@-]")
