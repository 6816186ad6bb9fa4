"""Access tokens for the syncer: the vault's, plus the last token of a just-disconnected
connection, kept in memory only (never stored), so a failed subscription delete can be
retried for as long as that token lives — after which the subscription expires by itself."""

from __future__ import annotations

from shared.graph.tokens import AccessTokenSource


class SyncerTokens:
    def __init__(self, vault_tokens: AccessTokenSource) -> None:
        self._vault_tokens = vault_tokens
        self._parting: dict[str, str] = {}

    async def access_token(self, connection_id: str, *, force_refresh: bool = False) -> str:
        if connection_id in self._parting:
            return self._parting[connection_id]
        return await self._vault_tokens.access_token(connection_id, force_refresh=force_refresh)

    def keep_for_cleanup(self, connection_id: str, token: str) -> None:
        self._parting[connection_id] = token

    def forget(self, connection_id: str) -> None:
        self._parting.pop(connection_id, None)
