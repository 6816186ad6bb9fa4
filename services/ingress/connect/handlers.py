"""The connect seam: authorize → Microsoft → callback → stored, published; and disconnect."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msal
import requests

from services.ingress.commands.domain import fingerprint
from services.ingress.commands.store import CommandStatusStore
from services.ingress.connect.domain import (
    account_from_claims,
    error_from_authorize_redirect,
    error_from_token_result,
    evaluate_grant,
    return_redirect,
)
from services.ingress.connect.flows import OAuthFlowStore, PendingFlow
from shared.connections.events import ConnectionEvents
from shared.connections.registry import ConnectionRegistry
from shared.contracts.commands import CommandKind, ConnectionCommandRequest, DisconnectCalendar
from shared.contracts.connections import ConnectionState, connection_id_for
from shared.contracts.user_errors import UserErrorCode
from shared.credentials.vault import TokenVault
from shared.identity.msal_app import confidential_client, http_session
from shared.messaging.publisher import Publisher
from shared.observability.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)


class UnknownFlow(Exception):
    """The callback's state matches no pending flow: forged, replayed or expired."""


class NotConnected(Exception):
    pass


class CommandIdReused(Exception):
    """The command id was already used for another kind of command."""


class IdentityUnavailable(Exception):
    """The Microsoft identity platform could not be reached (nothing was started)."""


@dataclass
class ConnectHandlers:
    settings: Settings
    flows: OAuthFlowStore
    vault: TokenVault
    registry: ConnectionRegistry
    events: ConnectionEvents
    publisher: Publisher
    statuses: CommandStatusStore
    # The outbox: a `connected` event not confirmed after this long is published by the
    # drainer (every `outbox_every_seconds`, on every ingress instance; claims are atomic).
    outbox_grace_seconds: float = 10.0
    outbox_every_seconds: float = 5.0

    def __post_init__(self) -> None:
        self._session = http_session(self.settings)

    def close(self) -> None:
        self._session.close()

    async def authorize(self, user_id: str, return_url: str) -> str:
        """Starts MSAL's auth code flow with PKCE; returns Microsoft's authorization URL."""
        try:
            flow = await asyncio.to_thread(self._initiate)
        except requests.RequestException as exc:
            raise IdentityUnavailable(type(exc).__name__) from exc
        await self.flows.put(PendingFlow(user_id, return_url, flow))
        return str(flow["auth_uri"])

    async def callback(self, params: dict[str, str]) -> str:
        """Completes the flow; returns where to send the browser (the return URL + status)."""
        pending = await self.flows.take(params.get("state", ""))
        if pending is None:
            raise UnknownFlow
        if "error" in params:
            code = error_from_authorize_redirect(
                params["error"], params.get("error_description", "")
            )
            return await self._failed(pending, code, f"authorize: {params['error']}")
        cache = msal.SerializableTokenCache()
        try:
            result = await asyncio.to_thread(self._redeem, cache, pending.flow, params)
        except requests.RequestException as exc:
            detail = f"identity platform unreachable ({type(exc).__name__})"
            return await self._failed(pending, UserErrorCode.AUTHORIZATION_FAILED, detail)
        except Exception as exc:  # whatever MSAL raises: the person goes back to SMVue
            log.warning("code redemption failed", error=type(exc).__name__)
            detail = f"code redemption failed ({type(exc).__name__})"
            return await self._failed(pending, UserErrorCode.AUTHORIZATION_FAILED, detail)
        if "error" in result:
            return await self._failed(
                pending, error_from_token_result(result), f"token: {result.get('error')}"
            )
        decision = evaluate_grant(result.get("scope"))
        if decision.error is not None:
            return await self._failed(pending, decision.error, "calendar scope not granted")
        try:
            account = account_from_claims(result.get("id_token_claims") or {})
        except ValueError:
            return await self._failed(pending, UserErrorCode.AUTHORIZATION_FAILED, "id token")
        connection_id = connection_id_for(pending.user_id)
        await self.vault.save(connection_id, cache.serialize())
        # Outbox: the registry owes `connection.connected` until it is published, so a
        # failed publish (or a crash right here) still ends in the import.
        outbox_id = uuid.uuid4().hex
        snapshot = await self.registry.connected(
            pending.user_id, account, decision.granted, decision.can_write, outbox_id=outbox_id
        )
        try:
            await self.events.publish("connected", snapshot)
            await self.registry.delivered(connection_id, outbox_id)
        except Exception as exc:  # stored and owed: the outbox drainer publishes it
            log.warning("connected event left to the outbox", error=type(exc).__name__)
        log.info(
            "calendar connected",
            connection_id=connection_id,
            account_kind=account.kind.value,
            can_write=decision.can_write,
        )
        return return_redirect(pending.return_url)

    async def deliver_outbox(self, grace_seconds: float | None = None) -> int:
        """Publishes the `connected` events the registry still owes (older than the grace);
        one superseded meanwhile (no longer connected) is only cleared. Returns how many
        were published."""
        grace = self.outbox_grace_seconds if grace_seconds is None else grace_seconds
        published = 0
        now = datetime.now(UTC)
        for owed in await self.registry.claim_undelivered(now - timedelta(seconds=grace)):
            if owed.kind == "connected" and owed.snapshot.state is ConnectionState.CONNECTED:
                await self.events.publish("connected", owed.snapshot)
                published += 1
            await self.registry.delivered(owed.snapshot.connection_id, owed.outbox_id)
        return published

    async def drain_outbox_forever(self) -> None:
        """Background job of the ingress: the outbox drainer (errors are retried)."""
        while True:
            try:
                if count := await self.deliver_outbox():
                    log.info("outbox delivered", events=count)
            except Exception as exc:
                log.warning("outbox delivery failed; will retry", error=type(exc).__name__)
            await asyncio.sleep(self.outbox_every_seconds)

    # MSAL is synchronous and does HTTP (even its constructor discovers the authority):
    # these run in worker threads, never on the event loop.
    def _initiate(self) -> dict[str, Any]:
        app = confidential_client(self.settings, session=self._session)
        flow: dict[str, Any] = app.initiate_auth_code_flow(
            self.settings.oauth_scopes,
            redirect_uri=self.settings.oauth_redirect_uri,
            response_mode="query",
        )
        return flow

    def _redeem(
        self, cache: msal.SerializableTokenCache, flow: dict[str, Any], params: dict[str, str]
    ) -> dict[str, Any]:
        app = confidential_client(self.settings, cache, self._session)
        result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, params)
        return result

    async def _failed(self, pending: PendingFlow, code: UserErrorCode, detail: str) -> str:
        snapshot = await self.registry.attempt_failed(pending.user_id, code)
        await self.events.publish("attempt_failed", snapshot, detail=detail)
        # A warning with its reason (our own words or the OAuth error code, never a secret):
        # an operator asked why someone could not connect finds it here.
        log.warning(
            "calendar connect failed", user_id=pending.user_id, code=code.value, reason=detail
        )
        return return_redirect(pending.return_url, error=code)

    async def disconnect(self, user_id: str, command_id: str | None) -> str:
        """Queues the disconnect for the syncer (which owns sync state and subscriptions);
        its outcome is followed like any command's (`GET /v1/commands/{id}`)."""
        snapshot = await self.registry.for_user(user_id)
        if snapshot is None:
            raise NotConnected(user_id)
        command_id = command_id or f"disconnect-{uuid.uuid4()}"
        mark = fingerprint(
            ConnectionCommandRequest(
                command_id=command_id, user_id=user_id, requested_at=datetime.fromtimestamp(0, UTC)
            )
        )
        known = await self.statuses.get(command_id)
        if known is not None:
            other_kind = known.get("kind") != CommandKind.DISCONNECT.value
            if other_kind or known.get("fingerprint") not in (None, mark):
                raise CommandIdReused(command_id)
            if known.get("fingerprint") == mark:
                return command_id  # already accepted and published
        command = DisconnectCalendar.build(
            key=snapshot.connection_id,
            payload=ConnectionCommandRequest(
                command_id=command_id, user_id=user_id, requested_at=datetime.now(UTC)
            ),
            correlation_id=command_id,
        )
        await self.publisher.publish(command)
        await self.statuses.accepted(command_id, CommandKind.DISCONNECT.value, user_id, mark)
        return command_id
