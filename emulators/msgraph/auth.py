"""FastAPI dependency: the Principal behind a Graph request's bearer token."""

from __future__ import annotations

from typing import Protocol

from fastapi import Request

from emulators.msgraph.errors import InvalidToken
from emulators.msgraph.principal import Principal


class AccessTokenVerifier(Protocol):
    def verify(self, token: str) -> Principal:
        """The token's principal; raises InvalidToken if missing, expired, revoked or forged."""
        ...


def require_principal(request: Request) -> Principal:
    """Use as `principal: Principal = Depends(require_principal)` on every Graph route."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("Access token is empty.")
    verifier: AccessTokenVerifier = request.app.state.emulator.token_verifier
    principal = verifier.verify(token.strip())
    request.state.principal = principal
    return principal
