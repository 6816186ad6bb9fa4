"""When a connection is stuck in one stage (pure): the syncer's watchdog relaunches it once,
and `smvue-sync connections list --stale` shows the same verdict.

- an import (the `connect` job) pending for longer than the import limit;
- an active connection whose Graph subscription is past its expiry (no notifications come);
- an active connection with no successful delta round for longer than the round limit.

"Once": after a relaunch, the watchdog waits for a successful round before it would relaunch
the connection again; until then it stays listed as stale (and relaunched).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from services.syncer.domain.jobs import Job


class StuckReason(StrEnum):
    IMPORT_STUCK = "import_stuck"
    SUBSCRIPTION_EXPIRED = "subscription_expired"
    NO_SUCCESSFUL_ROUND = "no_successful_round"


# What a relaunch asks for: a fresh import, or a new subscription (then a round).
RELAUNCH_JOB: dict[StuckReason, Job] = {
    StuckReason.IMPORT_STUCK: Job.CONNECT,
    StuckReason.SUBSCRIPTION_EXPIRED: Job.RECREATE,
    StuckReason.NO_SUCCESSFUL_ROUND: Job.CONNECT,
}


@dataclass(frozen=True)
class Limits:
    import_for: timedelta
    round_for: timedelta


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _moment(value: Any) -> datetime | None:
    return _aware(value) if isinstance(value, datetime) else None


def stuck_reason(
    state: Mapping[str, Any],
    subscription: Mapping[str, Any] | None,
    now: datetime,
    limits: Limits,
) -> tuple[StuckReason, datetime] | None:
    """Why the connection is stuck and since when; None when it is not."""
    pending = state.get("pending") or {}
    import_asked = _moment(pending.get(Job.CONNECT.value))
    if import_asked is not None and now - import_asked > limits.import_for:
        return StuckReason.IMPORT_STUCK, import_asked
    if not state.get("active"):
        return None  # paused or disconnected: nothing to relaunch
    expires = _moment((subscription or {}).get("expires_at"))
    if expires is not None and expires < now:
        return StuckReason.SUBSCRIPTION_EXPIRED, expires
    last_round = _moment(state.get("last_round_at"))
    if last_round is not None and now - last_round > limits.round_for:
        return StuckReason.NO_SUCCESSFUL_ROUND, last_round
    return None


def may_relaunch(state: Mapping[str, Any]) -> bool:
    """Not relaunched yet, or a round succeeded since the last relaunch."""
    relaunched = _moment(state.get("watchdog_relaunched_at"))
    if relaunched is None:
        return True
    last_round = _moment(state.get("last_round_at"))
    return last_round is not None and last_round > relaunched
