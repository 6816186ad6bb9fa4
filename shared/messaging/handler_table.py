"""Which handler a consumer group runs: recorded by `subscribe`, read by operator tools.

`dlq redrive` puts a dead letter back to the one group that failed it by calling that
group's own handler in-process (the service's wiring builds it, so there is no second copy
of any rule), instead of republishing onto a topic other groups consume too; `read-model
rebuild` replays the projector's topics through the same handlers into another database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from shared.contracts.topics import TopicSpec

Handler = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class GroupHandler:
    group: str
    service: str
    spec: TopicSpec
    handler: Handler
    batch: bool = False  # the handler takes a list of records (of one partition)

    async def apply(self, envelope: Any) -> None:
        """Handles one record, whether the handler takes one or a batch."""
        await self.handler([envelope] if self.batch else envelope)


_TABLES: WeakKeyDictionary[object, dict[str, GroupHandler]] = WeakKeyDictionary()


def register(broker: object, entry: GroupHandler) -> None:
    _TABLES.setdefault(broker, {})[entry.group] = entry


def handlers_of(broker: object) -> dict[str, GroupHandler]:
    """Every group → handler the service wired on `broker` (empty if none)."""
    return dict(_TABLES.get(broker, {}))
