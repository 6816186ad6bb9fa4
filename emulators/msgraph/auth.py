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


async def require_principal(request: Request) -> Principal:
    """Use as `principal: Principal = Depends(require_principal)` on every Graph route.
    Async so that FastAPI runs it on the event loop: a plain `def` dependency costs every
    request a hop to its thread pool and back."""
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
