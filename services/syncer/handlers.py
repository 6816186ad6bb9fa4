"""The syncer's seam: Kafka records and timers become pending jobs; jobs do the work.

Handlers only record durably what is wanted and wake the connection's worker (see
`workers.py`), so they answer in milliseconds; `perform` runs one job for one connection,
serially per connection, turning what Graph and the token store say into connection
state instead of crashes.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.syncer.adapters.graph_calendar import GraphCalendar
from services.syncer.adapters.store import SyncerStore
from services.syncer.domain.card import card_due
from services.syncer.domain.jobs import Job
from services.syncer.outcomes import CommandAnswers, Waiting, waiting, waiting_in
from services.syncer.rounds import RoundRunner
from services.syncer.settings import SyncerSettings
from services.syncer.subscriptions import SubscriptionKeeper
from services.syncer.tokens import SyncerTokens, parting_key
from services.syncer.watchdog import Watchdog
from services.syncer.workers import ConnectionWorkers, Done, TryLater
from shared.audit import AuditLog
from shared.connections.events import ConnectionEvents
from shared.connections.registry import ConnectionRegistry
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.contracts.commands import CommandKind, DisconnectCalendar, SyncNow
from shared.contracts.connections import ConnectionConnected, ConnectionState, connection_id_for
from shared.contracts.envelope import Envelope
from shared.contracts.notifications import (
    GraphChangeNotified,
    GraphLifecycleNotified,
    LifecycleEvent,
)
from shared.contracts.roster import RosterUpdated
from shared.contracts.user_errors import UserErrorCode
from shared.credentials.vault import TokenVault
from shared.graph.errors import (
    GraphError,
    GraphForbidden,
    GraphThrottled,
    NotConnected,
    ReauthorizationRequired,
)
from shared.messaging.publisher import Publisher
from shared.observability.logging import get_logger

log = get_logger(__name__)

_SYNC_JOBS = (Job.RECREATE.value, Job.RENEW.value, Job.ROUND.value, Job.REEVALUATE.value)
_SYNC_NOW = (CommandKind.SYNC_NOW,)
_DISCONNECT = (CommandKind.DISCONNECT,)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
        publisher: Publisher,
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
        self.answers = CommandAnswers(store, publisher)
        self.workers = ConnectionWorkers(store, settings, self.perform, on_idle=self._forget)
        # For correlation only; kept while this instance has a task for the connection.
        self.watchdog = Watchdog(store, self.workers, audit, settings)
        self._causes: dict[tuple[str, Job], Envelope] = {}
        self._chores = f"syncer-chores-{id(self):x}"

    def _forget(self, cid: str) -> None:
        """The connection's worker ended here: its causes can't be used any more, and the
        next job says its token epoch again."""
        for job in Job:
            self._causes.pop((cid, job), None)
        self.tokens.idle(cid)

    def tracked(self) -> dict[str, int]:
        """Sizes of the in-memory maps (each bounded; see tests/sync/test_bounds.py)."""
        return {
            "causes": len(self._causes),
            "tasks": self.workers.tracked(),
            "parting": self.tokens.tracked(),
            "tokens": self.tokens.reused(),
        }

    async def _request(
        self,
        cid: str,
        job: Job,
        cause: Envelope | None = None,
        *,
        command: Waiting | None = None,
        **fields: Any,
    ) -> None:
        """Durably asks for `job`, then wakes the worker (the record is acked after this)."""
        await self.store.request(cid, job.value, _now(), command=command, **fields)
        self._kick(cid, job, cause)

    async def _request_if_active(
        self,
        cid: str,
        job: Job,
        cause: Envelope | None,
        *,
        unless_round_started_after: datetime | None = None,
        command: Waiting | None = None,
    ) -> bool:
        """Asks for `job` if the connection is active: one conditional write, no read. When
        no worker here has the connection and a slot is free, that write also takes the
        lease, and the worker starts from the state it returned (no take of its own)."""
        at = _now()
        if self.workers.can_start(cid):
            taken = await self.store.request_and_take(
                cid,
                job.value,
                at,
                self.workers.owner,
                timedelta(seconds=self.settings.lease_seconds),
                unless_round_started_after=unless_round_started_after,
                command=command,
            )
            if taken is not None:
                self.workers.start(cid, taken)
                self._remember(cid, job, cause)
                return True
        if await self.store.request_if_active(
            cid,
            job.value,
            at,
            unless_round_started_after=unless_round_started_after,
            command=command,
        ):
            self._kick(cid, job, cause)
            return True
        return False

    def _kick(self, cid: str, job: Job, cause: Envelope | None) -> None:
        self.workers.kick(cid)  # before the cause: a task ending right now forgets causes
        self._remember(cid, job, cause)

    def _remember(self, cid: str, job: Job, cause: Envelope | None) -> None:
        if cause is not None:
            self._causes[(cid, job)] = cause

    # --- connections topic --------------------------------------------------------------
    async def on_connection_event(self, message: Envelope) -> None:
        if not isinstance(message, ConnectionConnected):
            return  # status/disconnected/failed snapshots are for the projector
        snapshot = message.payload
        current = await self.registry.get(snapshot.connection_id)
        if current is None or current.state is not ConnectionState.CONNECTED:
            return  # disconnected (or paused) since: don't resurrect it
        await self._request(snapshot.connection_id, Job.CONNECT, message, user_id=snapshot.user_id)

    # --- connection commands ------------------------------------------------------------
    async def on_connection_command(self, message: Envelope) -> None:
        if isinstance(message, SyncNow):
            await self._sync_now(message)
        elif isinstance(message, DisconnectCalendar):
            command = message.payload
            cid = connection_id_for(command.user_id)
            await self.store.request(
                cid,
                Job.DISCONNECT.value,
                _now(),
                command=waiting(command.command_id, CommandKind.DISCONNECT, command.user_id),
                user_id=command.user_id,
                active=False,  # no new sync work from now on
                disconnect_requested_at=command.requested_at,
            )
            await self.workers.cancel(cid)  # an in-flight round must not delay it
            self._kick(cid, Job.DISCONNECT, message)

    async def _sync_now(self, message: SyncNow) -> None:
        """A round, answered when it is done; a connection that can't sync is answered at
        once (one just connected waits for its initial import instead)."""
        user_id = message.payload.user_id
        cid = connection_id_for(user_id)
        command = waiting(message.payload.command_id, CommandKind.SYNC_NOW, user_id)
        if await self._request_if_active(cid, Job.ROUND, message, command=command):
            return
        current = await self.registry.get(cid)
        state = await self.store.state(cid)
        importing = state is None or Job.CONNECT.value in (state.get("pending") or {})
        if current is not None and current.state is ConnectionState.CONNECTED and importing:
            await self._request(cid, Job.ROUND, message, command=command)
            return
        code = (
            UserErrorCode.REAUTHORIZATION_REQUIRED
            if current is not None and current.state is ConnectionState.REAUTHORIZATION_REQUIRED
            else UserErrorCode.CALENDAR_NOT_CONNECTED
        )
        await self.answers.answer_now(cid, command, code=code, detail="not syncing", cause=message)

    # --- notifications --------------------------------------------------------------------
    async def on_notification(self, message: Envelope) -> None:
        if isinstance(message, GraphChangeNotified):
            notice = message.payload
            skew = timedelta(seconds=self.settings.notice_skew_seconds)
            # Coalesced in the write itself (the rule of `notice_already_covered`): no
            # round is asked for if one began after this notice was received.
            await self._request_if_active(
                notice.connection_id,
                Job.ROUND,
                message,
                unless_round_started_after=_aware(notice.received_at) + skew,
            )
        elif isinstance(message, GraphLifecycleNotified):
            await self._lifecycle(message)

    async def _lifecycle(self, message: GraphLifecycleNotified) -> None:
        notice = message.payload
        cid = notice.connection_id
        state = await self.store.state(cid)
        if state is None or not state.get("active"):
            return
        if notice.lifecycle_event is LifecycleEvent.MISSED:
            await self._request(cid, Job.ROUND, message)  # lost notices: a delta round
            return
        current = await self.store.subscription(cid)
        if current is None or current["subscription_id"] != notice.subscription_id:
            return  # about a subscription we already replaced
        if notice.lifecycle_event is LifecycleEvent.REAUTHORIZATION_REQUIRED:
            await self._request(cid, Job.RENEW, message)
        else:  # subscriptionRemoved: recreate it, then resync
            await self._request(cid, Job.RECREATE, message)

    # --- roster ---------------------------------------------------------------------------
    async def on_roster(self, message: Envelope) -> None:
        if not isinstance(message, RosterUpdated):
            return
        roster = message.payload
        members = [m.model_dump(mode="json") for m in roster.members]
        if not await self.store.put_roster(roster.manager_id, members, roster.version):
            return  # an older roster than the one we have
        await self.store.copy_roster(connection_id_for(roster.manager_id), members, roster.version)
        await self._request_if_active(connection_id_for(roster.manager_id), Job.REEVALUATE, message)

    # --- timers ---------------------------------------------------------------------------
    async def tick(self) -> None:
        """Renewals before expiry, safety reconciliation and window slides (a round), the
        watchdog (stuck connections relaunched once), retried subscription deletions, and
        waking workers whose jobs are due (also after a crash)."""
        now = _now()
        batch = self.settings.tick_batch  # every query of a tick is bounded
        soon = now + timedelta(minutes=self.settings.renew_before_minutes)
        expiring = [str(s["_id"]) for s in await self.store.expiring_subscriptions(soon, batch)]
        if expiring:
            renew = await self.store.needing_renewal(expiring)
            await self.store.request_many(renew, Job.RENEW.value, now)
        due = now - timedelta(seconds=self.settings.reconcile_seconds)
        wanted = self.rounds.wanted_window(now)
        stale = await self.store.due_for_round(due, wanted.start, batch)
        await self.store.request_many(stale, Job.ROUND.value, now)
        await self.watchdog.check(now)
        for cid in await self.store.with_pending(now, batch):
            self.workers.kick(cid)
        ttl = timedelta(seconds=max(self.settings.tick_seconds * 4, 60.0))
        if await self.store.chore_lease("retry_cleanups", self._chores, now, ttl):
            for cid in await self.subscriptions.retry_cleanups(now, batch):
                self.tokens.forget_connection(cid)

    # --- jobs -------------------------------------------------------------------------------
    async def perform(self, job: Job, state: dict[str, Any]) -> Done | None:
        """Runs `job`; returns what the worker's finishing write saves and asks for next."""
        cid = str(state["_id"])
        user_id = str(state.get("user_id", ""))
        cause = self._causes.pop((cid, job), None)
        self.tokens.expect(cid, state.get("token_epoch"))
        if job is Job.DISCONNECT:
            await self._disconnect(cid, user_id, state, cause)
            return None
        work: Awaitable[Done | None]
        if job is Job.CONNECT:
            work = self._connect(cid, user_id, state, cause)
        elif job is Job.RECREATE:
            work = self._recreate(cid, user_id, cause)
        elif job is Job.RENEW:
            work = self.subscriptions.renew(cid, user_id, cause)
        elif job is Job.ROUND:
            work = self._round(state, cause)
        else:
            work = self._reevaluate(state, cause)
        done = await self._guarded(cid, user_id, state, work)
        if done is not None and job in (Job.CONNECT, Job.ROUND):
            await self.answers.answer(cid, state, _SYNC_NOW, cause=cause)
        return done

    async def _connect(
        self, cid: str, user_id: str, previous: dict[str, Any], cause: Envelope | None
    ) -> Done | None:
        """The initial import (a full round), the card, the subscription; then a delta
        round. `previous`: the state as the job took its lease (a first connect's holds
        only what the request wrote)."""
        # A (re)connect may be with another account: nothing of the previous one is used
        # from here on (its parting token included, so its subscription cleanup is
        # abandoned; the subscription expires by itself).
        self.tokens.forget_connection(cid)
        current = await self.registry.get(cid)
        if current is None or current.state is not ConnectionState.CONNECTED:
            return None  # disconnected since
        # The mailbox identity comes from the id_token the person signed in with (ADR
        # 0010), not from GET /me, which would need User.Read.
        addresses = current.account.addresses() if current.account else []
        account_id = current.account.graph_user_id if current.account else None
        if _another_account(previous, account_id, addresses):
            # What was imported from the old account stays with consumers as it is (as on
            # a disconnect: "your SMVue meeting history will still be there"); the syncer
            # stops following it, so the new account's import retracts none of it.
            await self.store.forget_meetings(cid)
        started = _now()
        importing = await self.registry.importing(cid, started)
        if importing is not None:
            await self.events.publish("status_changed", importing, cause=cause)
        # A fresh start: the initial import is a full round of the window.
        fresh: dict[str, Any] = {
            "user_id": user_id,
            "owner_addresses": addresses,
            "account_id": account_id,
            "token_epoch": uuid.uuid4().hex,  # tokens cached before this connect: unused
            "active": True,
            "delta_link": None,
            "window_start": None,
            "window_end": None,
            "round_started_at": started,  # the import is a round
        }
        await self.store.set_state(cid, **fresh)
        self.tokens.expect(cid, fresh["token_epoch"])
        # The roster copy a previous connect left is current (`copy_roster`): kept.
        roster: dict[str, Any] = {
            k: previous[k] for k in ("roster", "roster_version") if k in previous
        }
        outcome = await self.rounds.run({"_id": cid, **fresh, **roster}, cause=cause)
        ready = await self.registry.imported(cid, started, outcome.items, outcome.one_on_ones)
        if ready is not None:  # the card: "your 1:1s are ready"
            await self.events.publish("status_changed", ready, cause=cause)
        await self.subscriptions.ensure(cid, user_id, cause)
        # Saved as the job finishes (`imported` updated the card). What changed between the
        # import's delta and the subscription's creation was never notified: one more
        # (incremental) delta round, asked for in that same write, picks it up.
        return Done(save={**outcome.save, "card_synced_at": _now()}, then=Job.ROUND)

    async def _recreate(self, cid: str, user_id: str, cause: Envelope | None) -> Done:
        await self.subscriptions.recreate(cid, user_id, cause)
        return Done(then=Job.ROUND)  # then resync (a delta round)

    async def _round(self, state: dict[str, Any], cause: Envelope | None) -> Done | None:
        """`state` was read under the worker's lease (or just written): no read again.
        Returns the state to save (the worker saves it as it finishes the job)."""
        cid = str(state["_id"])
        if not state.get("active"):
            return None
        outcome = await self.rounds.run(state, cause=cause)
        save = dict(outcome.save)
        now = _now()
        every = timedelta(seconds=self.settings.card_refresh_seconds)
        if card_due(state, now, every, sync_now_waiting=bool(waiting_in(state, _SYNC_NOW))):
            snapshot = await self.registry.synced(cid, now)
            if snapshot is not None:
                await self.events.publish("status_changed", snapshot, cause=cause)
            save["card_synced_at"] = now
        return Done(save=save)

    async def _reevaluate(self, state: dict[str, Any], cause: Envelope | None) -> None:
        if state.get("active"):
            await self.rounds.reevaluate(state, cause=cause)

    async def _disconnect(
        self, cid: str, user_id: str, state: dict[str, Any], cause: Envelope | None
    ) -> None:
        """Stop syncing, delete tokens, delete the subscription (best-effort), tell everyone.
        Meetings already imported stay; Outlook events SMVue created stay in Outlook."""
        current = await self.registry.get(cid)
        asked = state.get("disconnect_requested_at")
        if (
            current is not None
            and current.state is ConnectionState.CONNECTED
            and current.connected_at is not None
            and asked is not None
            and _aware(current.connected_at) > _aware(asked)
        ):
            # Reconnected after this command was given: the command is stale.
            await self.store.set_state(cid, active=True)
            await self.store.request(cid, Job.CONNECT.value, _now())
            await self.answers.answer(
                cid,
                state,
                _DISCONNECT,
                code=UserErrorCode.INVALID_COMMAND,
                detail="reconnected after the disconnect was asked for",
                cause=cause,
            )
            return
        await self.store.set_state(cid, active=False, delta_link=None)
        await self.store.drop_pending(cid, *_SYNC_JOBS, Job.CONNECT.value)
        # Keep the last access token in memory, for this subscription's deletion only, so a
        # failed delete can be retried; without a usable token the subscription simply
        # expires by itself.
        subscription = await self.store.subscription(cid)
        if subscription is not None:
            with contextlib.suppress(NotConnected, ReauthorizationRequired, GraphError):
                self.tokens.keep_for_cleanup(
                    parting_key(str(subscription["subscription_id"])),
                    await self.tokens.access_token(cid),
                    cid,
                )
        await self.vault.delete(cid)
        if await self.subscriptions.remove(cid, user_id, None, cause):
            self.tokens.forget_connection(cid)  # nothing left to retry with the parting token
        await self.store.drop_items(cid)
        snapshot = await self.registry.disconnected(cid)
        if snapshot is not None:
            await self.events.publish("disconnected", snapshot, cause=cause)
        await self.answers.answer(cid, state, _DISCONNECT, cause=cause)
        await self.answers.answer(
            cid,
            await self._fresh(cid),  # no round runs any more: answer every waiting one
            _SYNC_NOW,
            code=UserErrorCode.CALENDAR_NOT_CONNECTED,
            detail="disconnected",
            cause=cause,
        )

    async def _guarded(
        self, cid: str, user_id: str, state: dict[str, Any], work: Awaitable[Done | None]
    ) -> Done | None:
        """Turns what Graph and the token store say into connection state, not crashes.
        When the work was done: how it ended (a `Done`, empty for nothing to save or ask
        for); None when it wasn't. Sync Now commands waiting for work that can't be done
        are answered with why."""
        code: UserErrorCode
        try:
            return await work or Done()
        except ReauthorizationRequired:
            await self._pause(cid, user_id)
            code = UserErrorCode.REAUTHORIZATION_REQUIRED
        except NotConnected:
            await self.store.set_state(cid, active=False)
            await self.store.drop_pending(cid, *_SYNC_JOBS)
            code = UserErrorCode.CALENDAR_NOT_CONNECTED
        except GraphError as exc:
            if exc.transient:
                if int(state.get("failures") or 0) >= self.settings.max_job_failures:
                    # The worker abandons the job after this attempt: say so.
                    busy = isinstance(exc, GraphThrottled)
                    await self.answers.answer(
                        cid,
                        await self._fresh(cid),
                        _SYNC_NOW,
                        code=UserErrorCode.THROTTLED if busy else UserErrorCode.GRAPH_UNAVAILABLE,
                        detail=f"Graph {exc.status} {exc.code}",
                    )
                raise TryLater(f"Graph {exc.status} {exc.code}", exc.retry_after) from exc
            log.warning(
                "graph refused the sync", connection_id=cid, status=exc.status, code=exc.code
            )
            code = (
                UserErrorCode.INSUFFICIENT_PERMISSIONS
                if isinstance(exc, GraphForbidden)
                else UserErrorCode.GRAPH_UNAVAILABLE
            )
            snapshot = await self.registry.failed(cid, code)
            if snapshot is not None:
                await self.events.publish("status_changed", snapshot)
            await self.store.set_state(cid, card_synced_at=None)  # the next round clears it
        # No round follows for now: every Sync Now waiting (also one asked meanwhile) hears why.
        await self.answers.answer(cid, await self._fresh(cid), _SYNC_NOW, code=code)
        return None

    async def _fresh(self, cid: str) -> dict[str, Any]:
        return await self.store.state(cid) or {}

    async def _pause(self, cid: str, user_id: str) -> None:
        """The refresh token is dead: sync pauses until the person reconnects.

        Tell first, then stop: the card's snapshot and the audit record go out before the
        pending jobs are dropped, so if a publish fails the job stays pending and its retry
        (which meets the dead token again) publishes the snapshot the registry holds."""
        snapshot = await self.registry.reauthorization_required(cid)
        if snapshot is None:  # a retry: the registry already says so; tell it again
            current = await self.registry.get(cid)
            if current is not None and current.state is ConnectionState.REAUTHORIZATION_REQUIRED:
                snapshot = current
        if snapshot is not None:
            await self.events.publish("status_changed", snapshot)
        await self.audit.record(
            AuditOperation.TOKEN_REFRESH_FAILED,
            AuditOutcome.FAILED,
            connection_id=cid,
            user_id=user_id,
            detail="invalid_grant: reconnect needed",
        )
        await self.store.set_state(cid, active=False)
        await self.store.drop_pending(cid, *_SYNC_JOBS)


def _another_account(
    previous: dict[str, Any], account_id: str | None, addresses: list[str]
) -> bool:
    """Whether the mailbox synced before is not the one just connected."""
    before_id = previous.get("account_id")
    if before_id and account_id:
        return bool(before_id != account_id)
    before = {a.lower() for a in previous.get("owner_addresses") or []}
    return bool(before) and before != {a.lower() for a in addresses}
