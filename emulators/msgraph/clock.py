"""The emulator's clock: real time plus an offset that tests move forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time that the control API can advance (expire tokens, subscriptions...)."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the emulator's clock only moves forward")
        self._offset += delta
        return self.now()

    @property
    def offset(self) -> timedelta:
        return self._offset

    def reset(self) -> None:
        self._offset = timedelta(0)
