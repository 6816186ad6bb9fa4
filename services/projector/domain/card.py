"""What the Integrations card tells the person, from the connection's latest snapshot (pure).

The card says what works and what the person can do, in the help page's words:
- connected with Calendars.ReadWrite: syncing, can schedule;
- connected read-only (Calendars.Read only): syncing, can't schedule — "Insufficient
  permissions to access Outlook Calendar", reconnect and accept all permissions;
- reauthorization required: nothing syncs — reconnect;
- a failed re-consent: the previous grant keeps working, the card hints at the failure;
- disconnected / never connected: connect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.contracts.connections import ConnectionState
from shared.contracts.user_errors import UserErrorCode, user_message

# The help page's own solutions, per error.
HINTS: dict[UserErrorCode, str] = {
    UserErrorCode.INSUFFICIENT_PERMISSIONS: (
        "Calendar sync works, but SMVue can't schedule meetings: reconnect and ensure you "
        'click "Accept" for all permissions'
    ),
    UserErrorCode.REAUTHORIZATION_REQUIRED: "Try reconnecting your calendar",
    UserErrorCode.ADMIN_APPROVAL_REQUIRED: "Contact your IT admin to approve SMVue",
    UserErrorCode.CONDITIONAL_ACCESS_BLOCKED: (
        "Contact your IT admin: they can create an exception for SMVue in Azure AD"
    ),
    UserErrorCode.AUTHORIZATION_FAILED: (
        "Ensure you're logged into the correct Microsoft account, then try again"
    ),
}
RECONSENT_FAILED = "Your last attempt to reconnect failed; the previous connection keeps working"


class CardAction(StrEnum):
    CONNECT = "connect"
    RECONNECT = "reconnect"


@dataclass(frozen=True)
class Notice:
    code: UserErrorCode
    message: str
    hint: str | None


@dataclass(frozen=True)
class Card:
    syncing: bool
    can_schedule: bool
    notice: Notice | None
    action: CardAction | None


def _notice(code: UserErrorCode, hint: str | None = None) -> Notice:
    return Notice(code, user_message(code), hint or HINTS.get(code))


def _at(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _code(error: Any) -> UserErrorCode | None:
    if not isinstance(error, dict) or error.get("code") is None:
        return None
    try:
        return UserErrorCode(error["code"])
    except ValueError:
        return None


def card_for(doc: dict[str, Any]) -> Card:
    """`doc`: the stored connection snapshot (the projector's `connections` document)."""
    state = ConnectionState(doc.get("state", ConnectionState.FAILED.value))
    last_error = _code(doc.get("last_error"))
    if state is ConnectionState.REAUTHORIZATION_REQUIRED:
        return Card(
            False, False, _notice(UserErrorCode.REAUTHORIZATION_REQUIRED), CardAction.RECONNECT
        )
    if state is not ConnectionState.CONNECTED:
        notice = (
            _notice(last_error)
            if state is ConnectionState.FAILED and last_error is not None
            else None
        )
        return Card(False, False, notice, CardAction.CONNECT)
    can_write = bool(doc.get("can_write"))
    attempt = doc.get("last_connect_error")
    attempt_code = _code(attempt)
    attempt_at, connected_at = _at((attempt or {}).get("at")), _at(doc.get("connected_at"))
    if attempt_code is not None and (
        connected_at is None or attempt_at is None or attempt_at > connected_at
    ):
        solution = HINTS.get(attempt_code)
        hint = f"{RECONSENT_FAILED}. {solution}" if solution else RECONSENT_FAILED
        action = None if can_write else CardAction.RECONNECT
        return Card(True, can_write, _notice(attempt_code, hint), action)
    if not can_write:
        return Card(
            True, False, _notice(UserErrorCode.INSUFFICIENT_PERMISSIONS), CardAction.RECONNECT
        )
    if last_error is not None:
        return Card(True, True, _notice(last_error), None)
    return Card(True, True, None, None)
