"""A person's Outlook Calendar connection: what the Integrations card shows.

Every connection event carries the connection's whole current snapshot and a growing
version, so the projector can drop stale ones and a replay rebuilds the card.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from shared.contracts.envelope import Contract, Envelope
from shared.contracts.user_errors import UserErrorCode

_CONNECTION_NAMESPACE = uuid.UUID("0b7a5f5e-3c1d-4e0a-9a63-5d4c1f6f0e21")


def connection_id_for(user_id: str) -> str:
    """One SMVue user keeps one connection identity across reconnects (history carries over)."""
    return str(uuid.uuid5(_CONNECTION_NAMESPACE, f"outlook:{user_id}"))


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    REAUTHORIZATION_REQUIRED = "reauthorization_required"
    DISCONNECTED = "disconnected"
    FAILED = "failed"


class AccountKind(StrEnum):
    WORK = "work"  # Microsoft Entra ID (Azure AD) organisation account
    PERSONAL = "personal"  # Outlook.com / Hotmail (consumers tenant)


class ConnectedAccount(Contract):
    """Who signed in, from the id_token's claims (ADR 0010): no Graph call, no User.Read."""

    user_principal_name: str = Field(
        max_length=320, description="The id_token's preferred_username (the sign-in name)."
    )
    display_name: str | None = Field(default=None, max_length=256)
    tenant_id: str = Field(max_length=64)
    kind: AccountKind
    graph_user_id: str | None = Field(default=None, max_length=64)
    email: str | None = Field(
        default=None,
        max_length=320,
        description="The id_token's email claim (the mailbox address), when the account has one.",
    )

    def addresses(self) -> list[str]:
        """The account's own addresses, lower-cased: what makes an attendee 'the owner'."""
        return sorted({a.lower() for a in (self.user_principal_name, self.email) if a})


class ConnectionError_(Contract):
    code: UserErrorCode
    message: str = Field(max_length=500)
    at: AwareDatetime


class ImportState(StrEnum):
    IMPORTING = "importing"
    READY = "ready"


class ImportProgress(Contract):
    """The initial import after a connect: the backend shows "your 1:1s are ready"."""

    state: ImportState
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    duration_seconds: float | None = Field(default=None, ge=0)
    events_seen: int | None = Field(default=None, ge=0, description="Events in the window.")
    one_on_ones: int | None = Field(default=None, ge=0, description="1:1s found among them.")


class ConnectionSnapshot(Contract):
    connection_id: str
    user_id: str = Field(description="The SMVue user (manager) who owns the connection.")
    state: ConnectionState
    account: ConnectedAccount | None = None
    granted_scopes: list[str] = Field(default_factory=list)
    can_write: bool = Field(description="Calendars.ReadWrite granted: SMVue may create events.")
    connected_at: AwareDatetime | None = None
    last_sync_at: AwareDatetime | None = None
    last_error: ConnectionError_ | None = None
    last_connect_error: ConnectionError_ | None = Field(
        default=None,
        description="The last connect attempt's failure, kept until a connect succeeds (a "
        "failed re-consent leaves the previous grant working: the card hints at it).",
    )
    initial_import: ImportProgress | None = None
    version: int = Field(ge=0, description="Grows with every change; consumers drop stale ones.")


class ConnectionConnected(Envelope):
    """A person completed the OAuth flow: sync starts."""

    type: Literal["connection.connected"] = "connection.connected"
    payload: ConnectionSnapshot


class ConnectionStatusChanged(Envelope):
    """Last sync, an error, reauthorization required: anything the card shows changed."""

    type: Literal["connection.status_changed"] = "connection.status_changed"
    payload: ConnectionSnapshot


class ConnectionDisconnected(Envelope):
    """Sync stopped and tokens deleted; meetings already imported stay."""

    type: Literal["connection.disconnected"] = "connection.disconnected"
    payload: ConnectionSnapshot


class ConnectionAttemptFailed(Envelope):
    """An OAuth attempt failed; nothing was stored. Shown on the card as the last error."""

    type: Literal["connection.attempt_failed"] = "connection.attempt_failed"
    payload: ConnectionSnapshot
