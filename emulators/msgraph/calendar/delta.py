"""calendarView delta: rounds of pages ending in a deltaLink, and incremental rounds.

Sync state is kept server-side, as Exchange does; the skip and delta tokens clients see are
random, opaque and unforgeable. A delta token older than `store.delta_token_max_age`
(measured on the emulator's clock) is gone: 410 and a full resync is required.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emulators.msgraph.calendar.store import CalendarStore, Instance
from emulators.msgraph.clock import Clock
from emulators.msgraph.errors import GraphError

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 1000


@dataclass
class SyncState:
    user_id: str
    window_start: datetime
    window_end: datetime
    seen: dict[str, str]  # instance id → changeKey, as of the round that issued it
    issued: datetime


@dataclass
class Round:
    user_id: str
    pages: list[list[Any]]  # each item: an Instance (rendered late) or a @removed dict
    delta_token: str
    page_tokens: list[str] = field(default_factory=list)


class DeltaEngine:
    def __init__(self, store: CalendarStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._states: dict[str, SyncState] = {}
        self._rounds: dict[str, tuple[Round, int]] = {}  # skip token → (round, page index)

    def start_round(
        self,
        user_id: str,
        *,
        window: tuple[datetime, datetime] | None,
        delta_token: str | None,
        page_size: int,
    ) -> tuple[Round, int]:
        if delta_token is not None:
            state = self._states.get(delta_token)
            if state is not None and state.user_id != user_id:
                raise GraphError(400, "ErrorInvalidUrlQuery", "The delta token is not valid.")
            # Unknown (evicted, or lost in a restart) or too old: the sync state is gone.
            if state is None or self._clock.now() - state.issued > self._store.delta_token_max_age:
                self._states.pop(delta_token, None)
                raise GraphError(
                    410,
                    "SyncStateNotFound",
                    "The sync state could not be found or has expired. A full synchronization "
                    "is required: restart the round without a delta token.",
                )
            start, end = state.window_start, state.window_end
            previous = state.seen
        else:
            assert window is not None
            start, end = window
            previous = {}
        current = self._store.instances(user_id, start, end)
        seen = {item.id: item.change_key for item in current}
        entries: list[Any] = [item for item in current if previous.get(item.id) != item.change_key]
        entries += [
            {"@odata.type": "#microsoft.graph.event", "id": gone, "@removed": {"reason": "deleted"}}
            for gone in previous
            if gone not in seen
        ]
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        pages = [entries[i : i + size] for i in range(0, len(entries), size)] or [[]]
        token = secrets.token_urlsafe(32)
        self._states[token] = SyncState(user_id, start, end, seen, self._clock.now())
        round_ = Round(user_id, pages, token)
        for index in range(1, len(pages)):
            skip = secrets.token_urlsafe(32)
            round_.page_tokens.append(skip)
            self._rounds[skip] = (round_, index)
        return round_, 0

    def continue_round(self, user_id: str, skip_token: str) -> tuple[Round, int]:
        found = self._rounds.get(skip_token)
        if found is None or found[0].user_id != user_id:
            raise GraphError(400, "ErrorInvalidUrlQuery", "The skip token is not valid.")
        return found

    def reset(self) -> None:
        self._states.clear()
        self._rounds.clear()


def is_instance(entry: Any) -> bool:
    return isinstance(entry, Instance)
