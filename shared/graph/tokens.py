"""Where the Graph client gets a connection's access token from (the credentials side)."""

from __future__ import annotations

from typing import Protocol


class AccessTokenSource(Protocol):
    async def access_token(self, connection_id: str, *, force_refresh: bool = False) -> str:
        """A valid access token; raises ReauthorizationRequired or NotConnected."""
        ...
