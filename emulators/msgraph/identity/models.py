"""Records the identity platform keeps: app registrations, authorization codes, refresh tokens."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class AppRegistration:
    """An Entra app registration: a confidential client with a secret and its redirect URIs."""

    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)
    display_name: str = "SMVue"
    # Statically configured permissions: what `https://graph.microsoft.com/.default` means.
    api_permissions: list[str] = field(
        default_factory=lambda: ["User.Read", "Calendars.ReadWrite", "offline_access"]
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppRegistration:
        return cls(**data)


@dataclass
class AuthorizationCode:
    """Issued by /authorize after consent; single-use and short-lived (10 minutes by default)."""

    client_id: str
    user_id: str
    redirect_uri: str
    scopes: list[str]  # what was granted, not what was asked
    expires_at: datetime
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    nonce: str | None = None
    used: bool = False


@dataclass
class RefreshTokenRecord:
    """Opaque refresh tokens rotate: using one revokes it and issues a new one."""

    token_hash: str  # sha256 of the token; the token itself is never stored
    client_id: str
    user_id: str
    scopes: list[str]
    expires_at: datetime
    revoked: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["expires_at"] = self.expires_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RefreshTokenRecord:
        return cls(**{**data, "expires_at": datetime.fromisoformat(data["expires_at"])})
