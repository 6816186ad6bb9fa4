"""Access tokens for Graph calls, from the vault's MSAL cache (refreshing as needed).

MSAL is synchronous: it runs in a worker thread. Refresh tokens rotate, so the cache is
written back after any change — conditionally, so when two processes refresh at once the
loser reloads the winner's cache instead of reporting a false "reauthorization required".

The MSAL application is built once per token source (one per process), not per token
fetch: building one makes MSAL fetch the authority's OpenID configuration, a request to
the identity platform. Each fetch borrows an application from a small pool (one per
thread in flight, so a borrowed application is never shared) and points it at that
connection's cache; MSAL's silent path reads and writes `app.token_cache` at call time.
While the access token is valid, a Graph call costs no identity-platform request.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator

import msal

from shared.credentials.vault import TokenVault, VaultEntry
from shared.graph.errors import NotConnected, ReauthorizationRequired
from shared.identity.msal_app import confidential_client, http_session
from shared.settings import Settings


class AppPool:
    """Reusable MSAL applications for one authority, each used by one thread at a time."""

    def __init__(self, build: Callable[[], msal.ConfidentialClientApplication]) -> None:
        self._build = build
        self._idle: list[msal.ConfidentialClientApplication] = []
        self._guard = threading.Lock()
        self.built = 0

    @contextlib.contextmanager
    def borrowed(
        self, cache: msal.SerializableTokenCache
    ) -> Iterator[msal.ConfidentialClientApplication]:
        with self._guard:
            app = self._idle.pop() if self._idle else None
        if app is None:
            app = self._build()
            with self._guard:
                self.built += 1
        app.token_cache = cache
        try:
            yield app
        finally:
            app.token_cache = msal.SerializableTokenCache()  # holds no one's tokens idle
            with self._guard:
                self._idle.append(app)


class KeyedLocks:
    """One asyncio lock per key while someone holds or waits for it; dropped after."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class VaultTokenSource:
    def __init__(self, vault: TokenVault, settings: Settings) -> None:
        self._vault = vault
        self._settings = settings
        session = http_session(settings)
        self.apps = AppPool(lambda: confidential_client(settings, None, session))
        self._locks = KeyedLocks()

    async def access_token(self, connection_id: str, *, force_refresh: bool = False) -> str:
        async with self._locks.hold(connection_id):
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
        with self.apps.borrowed(cache) as app:
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
