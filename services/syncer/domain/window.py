"""The sync window: recent past (cadence) to the near future (dashboard), by whole days so a
deltaLink stays valid all day and the window slides once a day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def window_for(now: datetime, past_days: int, future_days: int) -> Window:
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(today - timedelta(days=past_days), today + timedelta(days=future_days + 1))


def needs_new_round(current: Window | None, wanted: Window) -> bool:
    """A deltaLink encodes its window: when the day rolls over, start a new round."""
    return current is None or current != wanted
