"""Access tokens for the syncer: the vault's, plus the last token of a just-disconnected
connection, kept in memory only (never stored), so a failed subscription delete can be
retried for as long as that token lives — after which the subscription expires by itself.

Parting tokens are bounded: each is dropped when its cleanup is done (or abandoned), and
at the latest after `keep_seconds` (an access token lives about an hour)."""

from __future__ import annotations

import time

from shared.graph.tokens import AccessTokenSource

PARTING_SECONDS = 3600.0


class SyncerTokens:
    def __init__(
        self, vault_tokens: AccessTokenSource, keep_seconds: float = PARTING_SECONDS
    ) -> None:
        self._vault_tokens = vault_tokens
        self._keep_seconds = keep_seconds
        self._parting: dict[str, tuple[str, float]] = {}  # token, until (monotonic)

    async def access_token(self, connection_id: str, *, force_refresh: bool = False) -> str:
        self._prune()
        if connection_id in self._parting:
            return self._parting[connection_id][0]
        return await self._vault_tokens.access_token(connection_id, force_refresh=force_refresh)

    def keep_for_cleanup(self, connection_id: str, token: str) -> None:
        self._prune()
        self._parting[connection_id] = (token, time.monotonic() + self._keep_seconds)

    def forget(self, connection_id: str) -> None:
        self._parting.pop(connection_id, None)

    def tracked(self) -> int:
        self._prune()
        return len(self._parting)

    def _prune(self) -> None:
        now = time.monotonic()
        for connection_id in [c for c, (_, until) in self._parting.items() if until <= now]:
            del self._parting[connection_id]
