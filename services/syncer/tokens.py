"""Access tokens for the syncer: the vault's, plus the last token of a just-disconnected
connection, kept in memory only (never stored), so a failed subscription delete can be
retried for as long as that token lives — after which the subscription expires by itself.

A parting token is only ever used for its own subscription's cleanup: it is kept under
`parting_key(subscription_id)`, never under the connection id, so no sync call can pick it
up, and a forced refresh never returns it for the connection. A reconnect (possibly with
another account) drops it at once (`forget_connection`): from then on no request carries
the previous account's token, and its cleanup is abandoned (the subscription expires).

Parting tokens are bounded: each is dropped when its cleanup is done (or abandoned), and
at the latest after `keep_seconds` (an access token lives about an hour).

An access token from the vault is reused for `reuse_seconds` (MSAL hands one out only
while it has more than five minutes left), which saves a vault read per Graph call — but
only within the connection's token epoch: `_connect` draws a new epoch into the sync
state for every (re)connect, and each job tells `expect` the epoch of the state it read
under its lease. A token cached by this instance before a reconnect (another account,
perhaps, connected through another instance) has the old epoch and is never used again.
A forced refresh (Graph answered 401) always goes to the vault."""

from __future__ import annotations

import time

from shared.graph.errors import NotConnected
from shared.graph.tokens import AccessTokenSource

PARTING_SECONDS = 3600.0
PARTING_PREFIX = "parting:"
REUSE_SECONDS = 240.0  # < MSAL's five minutes of validity left on any token it returns
PRUNE_EVERY_SECONDS = 30.0


def parting_key(subscription_id: str) -> str:
    """What a subscription's cleanup calls Graph as (its token and its limiter slot)."""
    return f"{PARTING_PREFIX}{subscription_id}"


class SyncerTokens:
    def __init__(
        self,
        vault_tokens: AccessTokenSource,
        keep_seconds: float = PARTING_SECONDS,
        reuse_seconds: float = REUSE_SECONDS,
    ) -> None:
        self._vault_tokens = vault_tokens
        self._keep_seconds = keep_seconds
        self._reuse_seconds = reuse_seconds
        # key → (token, connection id, until (monotonic))
        self._parting: dict[str, tuple[str, str, float]] = {}
        # connection id → the token epoch of the state its running job read
        self._epochs: dict[str, str] = {}
        # connection id → (epoch, token, until (monotonic))
        self._reused: dict[str, tuple[str, str, float]] = {}
        self._next_prune = 0.0

    def expect(self, connection_id: str, epoch: str | None) -> None:
        """A job of the connection runs on a state of token epoch `epoch` (None: a state
        from before epochs — its tokens are not reused)."""
        if epoch is None:
            self._epochs.pop(connection_id, None)
        else:
            self._epochs[connection_id] = epoch

    def idle(self, connection_id: str) -> None:
        """No job of the connection runs here now: the next one says its epoch again."""
        self._epochs.pop(connection_id, None)

    async def access_token(self, connection_id: str, *, force_refresh: bool = False) -> str:
        self._prune()
        if connection_id in self._parting:
            return self._parting[connection_id][0]
        if connection_id.startswith(PARTING_PREFIX):
            raise NotConnected(connection_id)  # its token is gone: the cleanup is abandoned
        epoch = self._epochs.get(connection_id)
        held = self._reused.get(connection_id)
        now = time.monotonic()
        if not force_refresh and epoch is not None and held is not None:
            held_epoch, token, until = held
            if held_epoch == epoch and now < until:
                return token
        token = await self._vault_tokens.access_token(connection_id, force_refresh=force_refresh)
        if epoch is not None and self._epochs.get(connection_id) == epoch:
            self._reused[connection_id] = (epoch, token, now + self._reuse_seconds)
        return token

    def keep_for_cleanup(self, key: str, token: str, connection_id: str | None = None) -> None:
        self._prune()
        self._parting[key] = (token, connection_id or key, time.monotonic() + self._keep_seconds)

    def forget(self, key: str) -> None:
        self._parting.pop(key, None)

    def forget_connection(self, connection_id: str) -> None:
        """Every token of the connection this instance holds: its parting ones (a
        reconnect, or its cleanups ended) and the one it reused."""
        for key in [k for k, (_, cid, _) in self._parting.items() if cid == connection_id]:
            del self._parting[key]
        self._reused.pop(connection_id, None)
        self._epochs.pop(connection_id, None)

    def tracked(self) -> int:
        """Parting tokens held (each bounded in time)."""
        self._prune(at_once=True)
        return len(self._parting)

    def reused(self) -> int:
        """Access tokens held for reuse (each for at most `reuse_seconds`)."""
        self._prune(at_once=True)
        return len(self._reused)

    def _prune(self, *, at_once: bool = False) -> None:
        now = time.monotonic()
        for key in [k for k, (_, _, until) in self._parting.items() if until <= now]:
            del self._parting[key]
        if at_once or now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY_SECONDS
            for key in [k for k, (_, _, until) in self._reused.items() if until <= now]:
                del self._reused[key]
