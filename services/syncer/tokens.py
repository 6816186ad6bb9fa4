"""Access tokens for the syncer: the vault's, plus the last token of a just-disconnected
connection, kept in memory only (never stored), so a failed subscription delete can be
retried for as long as that token lives — after which the subscription expires by itself.

A parting token is only ever used for its own subscription's cleanup: it is kept under
`parting_key(subscription_id)`, never under the connection id, so no sync call can pick it
up, and a forced refresh never returns it for the connection. A reconnect (possibly with
another account) drops it at once (`forget_connection`): from then on no request carries
the previous account's token, and its cleanup is abandoned (the subscription expires).

Parting tokens are bounded: each is dropped when its cleanup is done (or abandoned), and
at the latest after `keep_seconds` (an access token lives about an hour)."""

from __future__ import annotations

import time

from shared.graph.errors import NotConnected
from shared.graph.tokens import AccessTokenSource

PARTING_SECONDS = 3600.0
PARTING_PREFIX = "parting:"


def parting_key(subscription_id: str) -> str:
    """What a subscription's cleanup calls Graph as (its token and its limiter slot)."""
    return f"{PARTING_PREFIX}{subscription_id}"


class SyncerTokens:
    def __init__(
        self, vault_tokens: AccessTokenSource, keep_seconds: float = PARTING_SECONDS
    ) -> None:
        self._vault_tokens = vault_tokens
        self._keep_seconds = keep_seconds
        # key → (token, connection id, until (monotonic))
        self._parting: dict[str, tuple[str, str, float]] = {}

    async def access_token(self, connection_id: str, *, force_refresh: bool = False) -> str:
        self._prune()
        if connection_id in self._parting:
            return self._parting[connection_id][0]
        if connection_id.startswith(PARTING_PREFIX):
            raise NotConnected(connection_id)  # its token is gone: the cleanup is abandoned
        return await self._vault_tokens.access_token(connection_id, force_refresh=force_refresh)

    def keep_for_cleanup(self, key: str, token: str, connection_id: str | None = None) -> None:
        self._prune()
        self._parting[key] = (token, connection_id or key, time.monotonic() + self._keep_seconds)

    def forget(self, key: str) -> None:
        self._parting.pop(key, None)

    def forget_connection(self, connection_id: str) -> None:
        """Every parting token of the connection (a reconnect, or its cleanups ended)."""
        for key in [k for k, (_, cid, _) in self._parting.items() if cid == connection_id]:
            del self._parting[key]

    def tracked(self) -> int:
        self._prune()
        return len(self._parting)

    def _prune(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, _, until) in self._parting.items() if until <= now]:
            del self._parting[key]
