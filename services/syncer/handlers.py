"""The syncer's seam: one method per message type, serial per connection.

Records of one connection arrive in order on one partition; a per-connection lock also
serialises the roster and timer paths, which come from other topics and tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from services.syncer.adapters.graph_calendar import GraphCalendar
from services.syncer.adapters.store import SyncerStore
from services.syncer.rounds import RoundRunner
from services.syncer.settings import SyncerSettings
from services.syncer.subscriptions import SubscriptionKeeper
from services.syncer.tokens import SyncerTokens
from shared.audit import AuditLog
from shared.connections.events import ConnectionEvents
from shared.connections.registry import ConnectionRegistry
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.contracts.commands import DisconnectCalendar, SyncNow
from shared.contracts.connections import ConnectionConnected, connection_id_for
from shared.contracts.envelope import Envelope
from shared.contracts.notifications import (
    GraphChangeNotified,
    GraphLifecycleNotified,
    LifecycleEvent,
)
from shared.contracts.roster import RosterUpdated
from shared.contracts.user_errors import UserErrorCode
from shared.credentials.vault import TokenVault
from shared.graph.errors import GraphError, NotConnected, ReauthorizationRequired
from shared.messaging.consumer import Retryable
from shared.observability.logging import get_logger

log = get_logger(__name__)


class SyncerHandlers:
    def __init__(
        self,
        *,
        store: SyncerStore,
        graph: GraphCalendar,
        rounds: RoundRunner,
        subscriptions: SubscriptionKeeper,
        registry: ConnectionRegistry,
        events: ConnectionEvents,
        vault: TokenVault,
        tokens: SyncerTokens,
        audit: AuditLog,
        settings: SyncerSettings,
    ) -> None:
        self.store = store
        self.graph = graph
        self.rounds = rounds
        self.subscriptions = subscriptions
        self.registry = registry
        self.events = events
        self.vault = vault
        self.tokens = tokens
        self.audit = audit
        self.settings = settings
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # --- connections topic --------------------------------------------------------------
    async def on_connection_event(self, message: Envelope) -> None:
        if not isinstance(message, ConnectionConnected):
            return  # status/disconnected/failed snapshots are for the projector
        snapshot = message.payload
        cid = snapshot.connection_id
        async with self._locks[cid]:
            current = await self.registry.get(cid)
            if current is None or (
                current.version > snapshot.version and current.state != "connected"
            ):
                return  # a later disconnect already happened: don't resurrect it
            await self._guarded(
                cid, snapshot.user_id, self._connect(cid, snapshot.user_id, message)
            )

    async def _connect(self, cid: str, user_id: str, cause: Envelope) -> None:
        me = await self.graph.me(cid)
        addresses = sorted({str(a) for a in (me.get("mail"), me.get("userPrincipalName")) if a})
        await self.store.set_state(
            cid,
            user_id=user_id,
            owner_addresses=addresses,
            active=True,
            delta_link=None,
            window_start=None,
            window_end=None,
        )
        await self._round(cid, cause)
        await self.subscriptions.ensure(cid, user_id, cause)

    # --- connection commands ------------------------------------------------------------
    async def on_connection_command(self, message: Envelope) -> None:
        if isinstance(message, SyncNow):
            cid = connection_id_for(message.payload.user_id)
            async with self._locks[cid]:
                await self._guarded(cid, message.payload.user_id, self._round(cid, message))
        elif isinstance(message, DisconnectCalendar):
            cid = connection_id_for(message.payload.user_id)
            async with self._locks[cid]:
                await self._disconnect(cid, message.payload.user_id, message)

    async def _disconnect(self, cid: str, user_id: str, cause: Envelope) -> None:
        """Stop syncing, delete tokens, delete the subscription (best-effort), tell everyone.
        Meetings already imported stay; Outlook events SMVue created stay in Outlook."""
        await self.store.set_state(cid, user_id=user_id, active=False, delta_link=None)
        # Without a usable token the subscription can't be deleted: it then expires by itself.
        with contextlib.suppress(NotConnected, ReauthorizationRequired, GraphError):
            self.tokens.keep_for_cleanup(cid, await self.tokens.access_token(cid))
        await self.vault.delete(cid)
        await self.subscriptions.remove(cid, user_id, None, cause)
        await self.store.drop_items(cid)
        snapshot = await self.registry.disconnected(cid)
        if snapshot is not None:
            await self.events.publish("disconnected", snapshot, cause=cause)

    # --- notifications --------------------------------------------------------------------
    async def on_notification(self, message: Envelope) -> None:
        if isinstance(message, GraphChangeNotified):
            cid = message.payload.connection_id
            async with self._locks[cid]:
                state = await self.store.state(cid)
                started = state.get("round_started_at") if state else None
                if started is not None and _aware(started) > message.payload.received_at:
                    return  # coalesced: a round that began after this notice already ran
                await self._guarded(
                    cid, state.get("user_id", "") if state else "", self._round(cid, message)
                )
        elif isinstance(message, GraphLifecycleNotified):
            await self._lifecycle(message)

    async def _lifecycle(self, message: GraphLifecycleNotified) -> None:
        cid = message.payload.connection_id
        async with self._locks[cid]:
            state = await self.store.state(cid)
            if state is None or not state.get("active"):
                return
            user_id = str(state["user_id"])
            event = message.payload.lifecycle_event
            if event is LifecycleEvent.REAUTHORIZATION_REQUIRED:
                work = self.subscriptions.renew(cid, user_id, message)
            elif event is LifecycleEvent.SUBSCRIPTION_REMOVED:
                work = self._recreate_and_resync(cid, user_id, message)
            else:  # missed: some notifications were lost; a delta round catches up
                work = self._round(cid, message)
            await self._guarded(cid, user_id, work)

    async def _recreate_and_resync(self, cid: str, user_id: str, cause: Envelope) -> None:
        await self.subscriptions.recreate(cid, user_id, cause)
        await self._round(cid, cause)

    # --- roster ---------------------------------------------------------------------------
    async def on_roster(self, message: Envelope) -> None:
        if not isinstance(message, RosterUpdated):
            return
        roster = message.payload
        members = [m.model_dump(mode="json") for m in roster.members]
        if not await self.store.put_roster(roster.manager_id, members, roster.version):
            return  # an older roster than the one we have
        cid = connection_id_for(roster.manager_id)
        async with self._locks[cid]:
            await self.rounds.reevaluate(cid, cause=message)

    # --- timers ---------------------------------------------------------------------------
    async def tick(self) -> None:
        """Renew subscriptions before expiry; reconcile (and slide the window) periodically;
        retry subscription deletions that failed at disconnect."""
        await self.subscriptions.retry_cleanups()
        now = datetime.now(UTC)
        soon = now + timedelta(minutes=self.settings.renew_before_minutes)
        for sub in await self.store.expiring_subscriptions(soon):
            cid = str(sub["_id"])
            state = await self.store.state(cid)
            if state and state.get("active"):
                async with self._locks[cid]:
                    await self._guarded(
                        cid,
                        str(state["user_id"]),
                        self.subscriptions.renew(cid, str(state["user_id"])),
                    )
        due = now - timedelta(seconds=self.settings.reconcile_seconds)
        for state in await self.store.states(active=True):
            last = state.get("last_round_at")
            if last is None or _aware(last) < due:
                cid = str(state["_id"])
                async with self._locks[cid]:
                    await self._guarded(cid, str(state["user_id"]), self._round(cid, None))

    # --- helpers ----------------------------------------------------------------------------
    async def _round(self, cid: str, cause: Envelope | None) -> None:
        outcome = await self.rounds.run(cid, cause=cause)
        if outcome is not None:
            snapshot = await self.registry.synced(cid, datetime.now(UTC))
            if snapshot is not None:
                await self.events.publish("status_changed", snapshot, cause=cause)

    async def _guarded(self, cid: str, user_id: str, work: Any) -> None:
        """Turns what Graph and the token store say into connection state, not crashes."""
        try:
            await work
        except ReauthorizationRequired:
            await self.store.set_state(cid, active=False)
            snapshot = await self.registry.reauthorization_required(cid)
            await self.audit.record(
                AuditOperation.TOKEN_REFRESH_FAILED,
                AuditOutcome.FAILED,
                connection_id=cid,
                user_id=user_id,
                detail="invalid_grant: reconnect needed",
            )
            if snapshot is not None:
                await self.events.publish("status_changed", snapshot)
        except NotConnected:
            await self.store.set_state(cid, active=False)
        except GraphError as exc:
            if exc.transient:
                raise Retryable(f"Graph {exc.status} {exc.code}", exc.retry_after) from exc
            snapshot = await self.registry.failed(cid, UserErrorCode.GRAPH_UNAVAILABLE)
            log.warning(
                "graph refused the sync", connection_id=cid, status=exc.status, code=exc.code
            )
            if snapshot is not None:
                await self.events.publish("status_changed", snapshot)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
