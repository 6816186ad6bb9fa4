"""Cadence of one manager-member pair: how regularly their 1:1s happen.

Only non-cancelled, non-removed meetings count. Relative to `now`:

- **last held**: the latest meeting that has ended (`end <= now`); its start is shown.
- **next scheduled**: the earliest meeting that starts after `now`.
- **held in the last 90 days**: meetings held whose start is within `[now - 90 days, now]`.
- **median interval**: the median of the gaps, in days, between the starts of consecutive
  meetings held in the last 90 days; `None` with fewer than two.
- **overdue**: the pair is due a 1:1 when it has gone longer than the expected gap
  without one and none is coming within that gap. The expected gap (the *horizon*) is
  `max(1.5 x median interval, 14 days)`, or 14 days without a median. Overdue means:
  no meeting held within the last *horizon* (`now - last held start > horizon`, or never
  held) AND no meeting in progress or starting within the next *horizon*
  (`start <= now + horizon` and `end > now`).

Nothing of it is stored: the query API computes it from the pair's meetings at request
time (ADR 0007), so "overdue" is right even when nothing changed for weeks.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

LOOK_BACK = timedelta(days=90)
MIN_HORIZON = timedelta(days=14)
HORIZON_FACTOR = 1.5
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class MeetingTimes:
    """What cadence needs of a meeting (cancelled ones are kept here and skipped)."""

    start: datetime
    end: datetime
    is_cancelled: bool = False


@dataclass(frozen=True)
class Cadence:
    last_held: datetime | None
    next_scheduled: datetime | None
    held_last_90_days: int
    median_interval_days: float | None
    overdue_horizon_days: float
    overdue: bool


def cadence_id(manager_id: str, member_email: str) -> str:
    """One document per pair; e-mail addresses compare case-insensitively."""
    return f"{manager_id}:{member_email.lower()}"


def overdue_horizon(median_interval_days: float | None) -> timedelta:
    if median_interval_days is None:
        return MIN_HORIZON
    return max(MIN_HORIZON, timedelta(days=HORIZON_FACTOR * median_interval_days))


def compute_cadence(meetings: Iterable[MeetingTimes], now: datetime) -> Cadence:
    live = [m for m in meetings if not m.is_cancelled]
    held = sorted(m.start for m in live if m.end <= now)
    recent = [start for start in held if start >= now - LOOK_BACK]
    gaps = [(b - a).total_seconds() / SECONDS_PER_DAY for a, b in itertools.pairwise(recent)]
    median = round(statistics.median(gaps), 2) if gaps else None
    horizon = overdue_horizon(median)
    last_held = held[-1] if held else None
    next_scheduled = min((m.start for m in live if m.start > now), default=None)
    lapsed = last_held is None or now - last_held > horizon
    coming = any(m.end > now and m.start <= now + horizon for m in live)
    return Cadence(
        last_held=last_held,
        next_scheduled=next_scheduled,
        held_last_90_days=len(recent),
        median_interval_days=median,
        overdue_horizon_days=round(horizon.total_seconds() / SECONDS_PER_DAY, 2),
        overdue=lapsed and not coming,
    )
