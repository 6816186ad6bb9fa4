"""Access tokens for Graph calls, from the vault's MSAL cache (refreshing as needed).

MSAL is synchronous: it runs in a worker thread. Refresh tokens rotate, so the cache is
written back after any change — conditionally, so when two processes refresh at once the
loser reloads the winner's cache instead of reporting a false "reauthorization required".
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import msal

from shared.credentials.vault import TokenVault, VaultEntry
from shared.graph.errors import NotConnected, ReauthorizationRequired
from shared.identity.msal_app import confidential_client, http_session
from shared.settings import Settings


class VaultTokenSource:
    def __init__(self, vault: TokenVault, settings: Settings) -> None:
        self._vault = vault
        self._settings = settings
        self._session = http_session(settings)
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def access_token(self, connection_id: str, *, force_refresh: bool = False) -> str:
        async with self._locks[connection_id]:
            for _ in range(3):
                entry = await self._vault.load(connection_id)
                if entry is None:
                    raise NotConnected(connection_id)
                token, new_cache = await asyncio.to_thread(self._acquire, entry, force_refresh)
                if new_cache is not None and not await self._vault.save(
                    connection_id, new_cache, entry.version
                ):
                    continue  # someone else refreshed meanwhile: use their newer tokens
                if token is not None:
                    return token
                latest = await self._vault.load(connection_id)
                if latest is None or latest.version == entry.version:
                    raise ReauthorizationRequired(connection_id)
                # The refresh failed because another process rotated the token: try again.
            raise ReauthorizationRequired(connection_id)

    def _acquire(self, entry: VaultEntry, force_refresh: bool) -> tuple[str | None, str | None]:
        """(access token or None, the cache to store if MSAL changed it)."""
        cache = msal.SerializableTokenCache()
        cache.deserialize(entry.token_cache)
        app = confidential_client(self._settings, cache, self._session)
        accounts = app.get_accounts()
        result = None
        if accounts:
            result = app.acquire_token_silent_with_error(
                granted_scopes(cache, self._settings.oauth_scopes),
                account=accounts[0],
                force_refresh=force_refresh,
            )
        token = result.get("access_token") if result else None
        changed = cache.serialize() if cache.has_state_changed else None
        return (str(token) if token else None), changed


def granted_scopes(cache: msal.SerializableTokenCache, wanted: list[str]) -> list[str]:
    """The scopes to refresh with: those of `wanted` the person actually granted (a
    read-only grant must refresh as read-only — asking for more fails as unconsented).
    Graph names them bare or under its resource URI; both count."""
    granted: set[str] = set()
    for entry in cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN):
        for scope in str(entry.get("target", "")).split():
            granted.add(scope.rsplit("/", 1)[-1].lower())
    chosen = [scope for scope in wanted if scope.lower() in granted]
    return chosen or wanted
