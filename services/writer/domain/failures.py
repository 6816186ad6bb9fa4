"""Why a command failed, in the help page's words: each exception the writer can meet maps
to one stable user error code (the SMVue backend switches on it) plus a detail for
operators. Graph's message is kept for operators only; it never reaches the person."""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts.user_errors import UserErrorCode
from shared.graph.errors import (
    GraphError,
    GraphForbidden,
    GraphNotFound,
    GraphPreconditionFailed,
    GraphThrottled,
    GraphUnauthorized,
    GraphUnavailable,
    NotConnected,
    ReauthorizationRequired,
)


@dataclass(frozen=True)
class Failure:
    code: UserErrorCode
    detail: str | None = None
    graph_request_id: str | None = None
    http_status: int | None = None
    meeting_id: str | None = None  # a meeting that exists despite the failure


class Refused(Exception):
    """The writer won't do it (not SMVue's event, read-only grant, not connected...)."""

    def __init__(self, code: UserErrorCode, detail: str, *, meeting_id: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.meeting_id = meeting_id


def failure_for(error: Exception, *, wants_teams: bool = False) -> Failure | None:
    """The failure a command ends with, or None when the error is not the command's fault
    nor Graph's final word (the caller lets it propagate, to be retried)."""
    if isinstance(error, Refused):
        return Failure(error.code, error.detail, meeting_id=error.meeting_id)
    if isinstance(error, ReauthorizationRequired):
        return Failure(UserErrorCode.REAUTHORIZATION_REQUIRED, "the refresh token was refused")
    if isinstance(error, NotConnected):
        return Failure(UserErrorCode.CALENDAR_NOT_CONNECTED, "no stored credentials")
    if not isinstance(error, GraphError):
        return None
    detail = f"Graph {error.status} {error.code}: {error.message}"[:1000]
    code = _graph_code(error, wants_teams)
    return Failure(code, detail, error.request_id, error.status)


def _graph_code(error: GraphError, wants_teams: bool) -> UserErrorCode:
    if isinstance(error, GraphForbidden):
        return UserErrorCode.INSUFFICIENT_PERMISSIONS
    if isinstance(error, GraphUnauthorized):
        return UserErrorCode.REAUTHORIZATION_REQUIRED
    if isinstance(error, GraphNotFound):
        return UserErrorCode.EVENT_NOT_FOUND
    if isinstance(error, GraphPreconditionFailed):
        return UserErrorCode.CONFLICT
    if isinstance(error, GraphThrottled):
        return UserErrorCode.THROTTLED
    if isinstance(error, GraphUnavailable):
        return UserErrorCode.GRAPH_UNAVAILABLE
    if wants_teams and refused_over_teams(error):
        return UserErrorCode.TEAMS_LICENCE_REQUIRED
    return UserErrorCode.INVALID_COMMAND


def refused_over_teams(error: Exception) -> bool:
    """Graph refused a create because of its online meeting (a 400 naming it)."""
    if not isinstance(error, GraphError) or error.status != 400:
        return False
    text = error.message.lower()
    return "teamsforbusiness" in text or "onlinemeeting" in text
