"""Graph subscriptions per connection: create (fresh random clientState), renew before
expiry, recreate when removed, delete on disconnect (best-effort, retried for a while).

Lifetime: `subscription_minutes` (under Microsoft's 4230 minutes for Outlook events); the
expiry kept and renewed on is the `expirationDateTime` Graph answered, not the one asked
for. A create or renew refused for its expiry is retried once with the limit Graph named
(`domain/lifetime.py`), audited as refused, and that shorter lifetime is used from then on.

The clientState is a secret: it is sent to Graph once and never stored or published; only
its SHA-256 is kept and published, which is all the ingress needs to check notifications.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from services.syncer.adapters.graph_calendar import GraphCalendar
from services.syncer.adapters.store import SyncerStore
from services.syncer.domain.lifetime import shorter_lifetime
from services.syncer.settings import SyncerSettings
from services.syncer.tokens import parting_key
from shared.audit import AuditLog
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.contracts.envelope import Envelope
from shared.contracts.subscriptions import (
    SubscriptionActivated,
    SubscriptionEnded,
    SubscriptionInfo,
)
from shared.graph.errors import GraphError, GraphNotFound, NotConnected, ReauthorizationRequired
from shared.messaging.publisher import Publisher
from shared.observability.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)

T = TypeVar("T")


class SubscriptionKeeper:
    def __init__(
        self,
        store: SyncerStore,
        graph: GraphCalendar,
        publisher: Publisher,
        audit: AuditLog,
        settings: Settings,
        syncer_settings: SyncerSettings,
    ) -> None:
        self._store = store
        self._graph = graph
        self._publisher = publisher
        self._audit = audit
        self._settings = settings
        self._syncer = syncer_settings
        self._minutes = syncer_settings.subscription_minutes  # shortened if Graph says so

    async def _with_lifetime(
        self,
        call: Callable[[datetime], Awaitable[T]],
        operation: AuditOperation,
        connection_id: str,
        user_id: str,
        target_ids: list[str],
        cause: Envelope | None,
    ) -> T:
        """`call(expiry)`; if Graph refuses the expiry, once more with the limit it named."""
        asked = self._minutes
        try:
            return await call(datetime.now(UTC) + timedelta(minutes=asked))
        except GraphError as exc:
            shorter = shorter_lifetime(exc.status, exc.message, asked)
            if shorter is None:
                raise
            refusal = exc
        log.warning(
            "graph refused the subscription expiry; retrying shorter",
            connection_id=connection_id,
            asked_minutes=asked,
            retry_minutes=shorter,
        )
        await self._audit.record(
            operation,
            AuditOutcome.REFUSED,
            connection_id=connection_id,
            user_id=user_id,
            target_ids=target_ids,
            http_status=refusal.status,
            graph_request_id=refusal.request_id,
            detail=f"expiry of {asked} minutes refused ({refusal.code}: {refusal.message}); "
            f"retried once with {shorter} minutes",
            cause=cause,
        )
        result = await call(datetime.now(UTC) + timedelta(minutes=shorter))
        self._minutes = shorter  # Graph took it: ask for no more from now on
        return result

    async def ensure(self, connection_id: str, user_id: str, cause: Envelope | None = None) -> None:
        """After a (re)connect: a subscription kept from before a pause may have expired in
        Graph meanwhile, so renew it (which recreates it if Graph no longer knows it)."""
        await self.renew(connection_id, user_id, cause)

    async def create(self, connection_id: str, user_id: str, cause: Envelope | None = None) -> None:
        client_state = secrets.token_urlsafe(48)  # ≤ 128 characters, as Graph requires
        base = self._settings.public_base_url.rstrip("/")

        async def create(expires: datetime) -> tuple[str, datetime, str | None]:
            return await self._graph.create_subscription(
                connection_id,
                notification_url=f"{base}/graph/notifications",
                lifecycle_url=f"{base}/graph/lifecycle",
                client_state=client_state,
                expires=expires,
            )

        try:
            subscription_id, expires, request_id = await self._with_lifetime(
                create, AuditOperation.SUBSCRIPTION_CREATE, connection_id, user_id, [], cause
            )
        except GraphError as exc:
            await self._audit.record(
                AuditOperation.SUBSCRIPTION_CREATE,
                AuditOutcome.FAILED,
                connection_id=connection_id,
                user_id=user_id,
                http_status=exc.status,
                graph_request_id=exc.request_id,
                detail=exc.code,
                cause=cause,
            )
            raise
        digest = hashlib.sha256(client_state.encode()).hexdigest()
        await self._store.put_subscription(connection_id, subscription_id, expires, digest)
        info = SubscriptionInfo(
            subscription_id=subscription_id,
            connection_id=connection_id,
            resource="me/events",
            expires_at=expires,
            client_state_sha256=digest,
        )
        await self._publisher.publish(
            SubscriptionActivated.build(key=connection_id, payload=info, cause=cause)
        )
        await self._audit.record(
            AuditOperation.SUBSCRIPTION_CREATE,
            AuditOutcome.SUCCEEDED,
            connection_id=connection_id,
            user_id=user_id,
            target_ids=[subscription_id],
            graph_request_id=request_id,
            cause=cause,
        )

    async def renew(self, connection_id: str, user_id: str, cause: Envelope | None = None) -> None:
        current = await self._store.subscription(connection_id)
        if current is None:
            await self.create(connection_id, user_id, cause)
            return
        subscription_id = str(current["subscription_id"])

        async def renew(expires: datetime) -> tuple[datetime, str | None]:
            return await self._graph.renew_subscription(connection_id, subscription_id, expires)

        try:
            expires, request_id = await self._with_lifetime(
                renew,
                AuditOperation.SUBSCRIPTION_RENEW,
                connection_id,
                user_id,
                [subscription_id],
                cause,
            )
        except GraphNotFound:
            await self.recreate(connection_id, user_id, cause)
            return
        except GraphError as exc:
            await self._audit.record(
                AuditOperation.SUBSCRIPTION_RENEW,
                AuditOutcome.FAILED,
                connection_id=connection_id,
                user_id=user_id,
                target_ids=[current["subscription_id"]],
                http_status=exc.status,
                graph_request_id=exc.request_id,
                detail=exc.code,
                cause=cause,
            )
            raise
        await self._store.put_subscription(
            connection_id, current["subscription_id"], expires, current["client_state_sha256"]
        )
        await self._publisher.publish(
            SubscriptionActivated.build(
                key=connection_id,
                cause=cause,
                payload=SubscriptionInfo(
                    subscription_id=current["subscription_id"],
                    connection_id=connection_id,
                    resource="me/events",
                    expires_at=expires,
                    client_state_sha256=current["client_state_sha256"],
                ),
            )
        )
        await self._audit.record(
            AuditOperation.SUBSCRIPTION_RENEW,
            AuditOutcome.SUCCEEDED,
            connection_id=connection_id,
            user_id=user_id,
            target_ids=[current["subscription_id"]],
            graph_request_id=request_id,
            cause=cause,
        )

    async def recreate(
        self, connection_id: str, user_id: str, cause: Envelope | None = None
    ) -> None:
        await self._store.drop_subscription(connection_id)
        await self.create(connection_id, user_id, cause)

    async def remove(
        self, connection_id: str, user_id: str, access_token: str | None, cause: Envelope | None
    ) -> bool:
        """Disconnect: delete it now if possible; otherwise record it for later retries.
        True when nothing is left to retry.

        Tell, delete, then forget: the document is dropped last, so a retry after any
        failure (the publish, Graph, the audit) still finds the subscription and redoes the
        rest (publishing `subscription.ended` twice is harmless)."""
        current = await self._store.subscription(connection_id)
        if current is None:
            return True
        subscription_id = str(current["subscription_id"])
        await self._publisher.publish(
            SubscriptionEnded.build(
                key=connection_id,
                cause=cause,
                payload=SubscriptionInfo(
                    subscription_id=subscription_id,
                    connection_id=connection_id,
                    resource="me/events",
                    expires_at=current["expires_at"],
                    client_state_sha256=current["client_state_sha256"],
                ),
            )
        )
        try:
            request_id = await self._graph.delete_subscription(
                parting_key(subscription_id), subscription_id
            )
        except GraphNotFound:
            request_id = None  # already gone: that's what we wanted
        except Exception as exc:  # best-effort: never blocks the disconnect
            log.warning("subscription delete failed; will retry", error=type(exc).__name__)
            await self._store.put_cleanup(
                subscription_id,
                {
                    "connection_id": connection_id,
                    "user_id": user_id,
                    "attempts": 1,
                    "last_error": type(exc).__name__,
                    "give_up_at": current["expires_at"],
                },
            )
            await self._audit.record(
                AuditOperation.SUBSCRIPTION_DELETE,
                AuditOutcome.FAILED,
                connection_id=connection_id,
                user_id=user_id,
                target_ids=[subscription_id],
                detail=f"will retry: {type(exc).__name__}",
                cause=cause,
            )
            await self._store.drop_subscription(connection_id)
            return False
        await self._audit.record(
            AuditOperation.SUBSCRIPTION_DELETE,
            AuditOutcome.SUCCEEDED,
            connection_id=connection_id,
            user_id=user_id,
            target_ids=[subscription_id],
            graph_request_id=request_id,
            cause=cause,
        )
        await self._store.drop_subscription(connection_id)
        return True

    async def retry_cleanups(self, now: datetime | None = None, limit: int = 0) -> list[str]:
        """Retries failed deletions while the parting token lives and the subscription
        hasn't expired (`give_up_at`); then gives up honestly (it expires by itself).
        The caller runs this on one instance at a time (a chore lease). Returns the
        connections whose cleanup ended (their parting token is no longer needed)."""
        moment = now or datetime.now(UTC)
        ended: list[str] = []
        for doc in await self._store.cleanups(limit):
            subscription_id = str(doc["_id"])
            connection_id = str(doc["connection_id"])
            outcome, detail, request_id = AuditOutcome.SUCCEEDED, "retried", None
            give_up_at = doc.get("give_up_at")
            if give_up_at is not None and _aware(give_up_at) <= moment:
                outcome, detail = AuditOutcome.FAILED, f"abandoned: expired {give_up_at}"
            else:
                try:
                    request_id = await self._graph.delete_subscription(
                        parting_key(subscription_id), subscription_id
                    )
                except GraphNotFound:
                    pass
                except (NotConnected, ReauthorizationRequired):
                    outcome, detail = AuditOutcome.FAILED, f"abandoned: expires {give_up_at}"
                except GraphError as exc:
                    await self._store.put_cleanup(
                        subscription_id,
                        {
                            **doc,
                            "attempts": int(doc.get("attempts", 1)) + 1,
                            "last_error": exc.code,
                        },
                    )
                    continue
            await self._store.drop_cleanup(subscription_id)
            ended.append(connection_id)
            await self._audit.record(
                AuditOperation.SUBSCRIPTION_DELETE,
                outcome,
                connection_id=connection_id,
                user_id=doc.get("user_id"),
                target_ids=[subscription_id],
                graph_request_id=request_id,
                detail=detail,
            )
        return ended


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
