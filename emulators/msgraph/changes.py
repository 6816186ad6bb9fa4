"""The seam between the calendar store and change notifications.

The calendar side publishes every change to an event in a mailbox; the subscriptions side
listens and delivers change notifications to matching subscriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

ChangeType = Literal["created", "updated", "deleted"]


@dataclass(frozen=True)
class EventChange:
    user_id: str  # the mailbox owner
    event_id: str
    change_type: ChangeType


Listener = Callable[[EventChange], None]


class ChangeFeed:
    """Synchronous fan-out; listeners must not block (they queue work)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def publish(self, change: EventChange) -> None:
        for listener in self._listeners:
            listener(change)
