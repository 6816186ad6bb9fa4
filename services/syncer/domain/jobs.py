"""What a connection's worker does next, from its durable "pending" flags (pure).

Every Kafka record and timer only *records* that work is wanted (a timestamped flag in the
connection's sync state) and wakes the connection's worker; the worker runs one job at a
time. So many notifications for one mailbox become one delta round (the flag is set many
times, the round runs once), a throttled mailbox never blocks a consumer, and a crash
loses nothing (the flags are in MongoDB, the timer wakes workers again).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum


class Job(StrEnum):
    DISCONNECT = "disconnect"  # stop syncing, delete tokens and the subscription
    CONNECT = "connect"  # initial import of the window, then the subscription
    RECREATE = "recreate"  # subscriptionRemoved: a new subscription (then a round)
    RENEW = "renew"  # expiry near, or reauthorizationRequired
    ROUND = "round"  # a delta round (notification, missed, Sync Now, timer)
    REEVALUATE = "reevaluate"  # the roster changed: re-decide stored events


PRIORITY: tuple[Job, ...] = (
    Job.DISCONNECT,
    Job.CONNECT,
    Job.RECREATE,
    Job.RENEW,
    Job.ROUND,
    Job.REEVALUATE,
)


def next_job(pending: Mapping[str, object], active: bool) -> Job | None:
    """The most urgent pending job; a paused (inactive) connection only (dis)connects."""
    for job in PRIORITY:
        if job.value not in pending:
            continue
        if active or job in (Job.DISCONNECT, Job.CONNECT):
            return job
    return None


def notice_already_covered(
    received_at: datetime, last_round_started_at: datetime | None, margin: timedelta
) -> bool:
    """A (late or duplicated) change notice needs no round if a round began after it was
    received. `margin` absorbs clock skew between the ingress and the syncer: when unsure,
    run the round (an extra round is cheap, a missed change is not)."""
    if last_round_started_at is None:
        return False
    return last_round_started_at > received_at + margin


def backoff_seconds(failures: int, base: float, cap: float) -> float:
    """Exponential backoff for a job that failed `failures` times in a row."""
    return float(min(cap, base * 2 ** max(0, failures - 1)))
