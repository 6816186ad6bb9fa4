"""The syncer's watchdog: relaunches a stuck connection once, and says so (a metric, an
audit record, a log line and `watchdog_*` fields that `connections list --stale` shows).

A relaunch clears the job's backoff and any lease left by a vanished instance, stops this
instance's in-flight job for the connection, and asks for a fresh import (or a new
subscription): see `domain/watchdog.py` for when a connection counts as stuck.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prometheus_client import Counter

from services.syncer.adapters.store import SyncerStore
from services.syncer.domain.watchdog import (
    RELAUNCH_JOB,
    Limits,
    StuckReason,
    may_relaunch,
    stuck_reason,
)
from services.syncer.settings import SyncerSettings
from services.syncer.workers import ConnectionWorkers
from shared.audit import AuditLog
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.observability.logging import get_logger

log = get_logger(__name__)

RELAUNCHES = Counter(
    "smvue_syncer_watchdog_relaunches_total",
    "Stuck connections the syncer's watchdog relaunched",
    ["reason"],
)


def limits_of(settings: SyncerSettings) -> Limits:
    return Limits(
        import_for=timedelta(seconds=settings.watchdog_import_seconds),
        round_for=timedelta(seconds=settings.watchdog_round_seconds),
    )


class Watchdog:
    def __init__(
        self,
        store: SyncerStore,
        workers: ConnectionWorkers,
        audit: AuditLog,
        settings: SyncerSettings,
    ) -> None:
        self._store = store
        self._workers = workers
        self._audit = audit
        self._limits = limits_of(settings)
        self._batch = settings.tick_batch

    async def check(self, now: datetime) -> list[tuple[str, StuckReason]]:
        """Relaunches every stuck connection that may be; returns what it relaunched.
        Three bounded queries whatever the number of connections: the expired
        subscriptions, the connections that may be stuck (the database picks them by the
        same limits), and the subscriptions of those."""
        relaunched = []
        expired = {
            str(s["_id"]): s for s in await self._store.expiring_subscriptions(now, self._batch)
        }
        candidates = await self._store.maybe_stuck(
            import_asked_before=now - self._limits.import_for,
            last_round_before=now - self._limits.round_for,
            subscription_expired=sorted(expired),
            limit=self._batch,
        )
        subscriptions = expired | await self._store.subscriptions_of(
            [str(state["_id"]) for state in candidates if str(state["_id"]) not in expired]
        )
        for state in candidates:
            cid = str(state["_id"])
            found = stuck_reason(state, subscriptions.get(cid), now, self._limits)
            if found is None or not may_relaunch(state):
                continue
            reason, since = found
            await self._relaunch(cid, state.get("user_id"), reason, since, now)
            relaunched.append((cid, reason))
        return relaunched

    async def _relaunch(
        self, cid: str, user_id: str | None, reason: StuckReason, since: datetime, now: datetime
    ) -> None:
        await self._workers.cancel(cid)
        await self._store.set_state(
            cid,
            watchdog_relaunched_at=now,
            watchdog_reason=reason.value,
            watchdog_stuck_since=since,
            lease_owner=None,
            lease_until=None,
            retry_at=None,
            failures=0,
        )
        await self._store.request(cid, RELAUNCH_JOB[reason].value, now)
        RELAUNCHES.labels(reason=reason.value).inc()
        log.warning("stuck connection relaunched", connection_id=cid, reason=reason.value)
        await self._audit.record(
            AuditOperation.SYNC_RELAUNCHED,
            AuditOutcome.SUCCEEDED,
            connection_id=cid,
            user_id=user_id,
            detail=f"{reason.value} since {since.isoformat()}: {RELAUNCH_JOB[reason].value}",
        )
        self._workers.kick(cid)
