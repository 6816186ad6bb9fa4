"""calendarView delta: rounds of pages ending in a deltaLink, and incremental rounds.

Per learn.microsoft.com/graph/delta-query-events and /graph/api/event-delta:
- the first round returns every instance in the window (single instances, occurrences,
  exceptions); a round's pages carry `$skiptoken` nextLinks until the last carries a
  `$deltatoken` deltaLink;
- a round started from a deltaLink returns what changed since: changed instances in full,
  and `@removed` (reason `deleted`) for instances deleted or moved out of the window, and for
  events *outside* the window that were added, updated or deleted since ("filter the events
  under @removed for the date range that your scenario requires");
- tokens are opaque; an expired one gives 410 with a Location to restart from
  (delta-query-overview "Synchronization reset" / "Token duration").

Sync states (what each deltaLink has seen) are kept server-side, as Exchange does; tokens are
sealed by `TokenCodec` and name a state. States older than `store.delta_token_max_age`
(on the emulator's clock) are gone, as are the oldest once a mailbox holds more than
`max_states_per_mailbox` (Outlook's limit is a cache size, not a fixed age).
"""

from __future__ import annotations

import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emulators.msgraph.calendar.ids import OCCURRENCE
from emulators.msgraph.calendar.store import CalendarStore, Instance
from emulators.msgraph.calendar.tokens import TokenCodec
from emulators.msgraph.clock import Clock
from emulators.msgraph.errors import GraphError

DEFAULT_PAGE_SIZE = 10  # Outlook's default page size for event collections
MAX_PAGE_SIZE = 1000


def removed(event_id: str) -> dict[str, Any]:
    """The documented shape of a deleted / out-of-window item in a delta page."""
    return {
        "@odata.type": "#microsoft.graph.event",
        "id": event_id,
        "@removed": {"reason": "deleted"},
    }


@dataclass(frozen=True)
class Gone:
    """An instance a delta page reports as `@removed`, in the id form the client knew it by:
    a client reading default ids knew it under the id it had after `moves` moves of its
    event (calendar/ids.py). `moved_only`: it is still there, only its event moved folders
    since the previous round, so only a client reading default ids (whose id for it no
    longer exists) is told it is gone; one reading immutable ids sees it as changed."""

    id: str  # the stored (immutable) instance id
    moves: int
    moved_only: bool = False


class InvalidStateToken(GraphError):
    """400: a $skiptoken/$deltatoken this service never issued (garbage, edited, foreign)."""

    def __init__(self) -> None:
        super().__init__(
            400,
            "ErrorInvalidSyncStateData",
            "The sync state data is corrupt or otherwise invalid.",
        )


class SyncStateGone(GraphError):
    """410: the token was ours but its sync state expired or was evicted: full resync."""

    def __init__(self, window: tuple[datetime, datetime] | None) -> None:
        super().__init__(
            410,
            "SyncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must "
            "be synchronized again.",
        )
        self.window = window


@dataclass
class SyncState:
    id: str
    user_id: str
    window_start: datetime
    window_end: datetime
    seen: dict[str, str]  # instance id → changeKey, as of the round that issued it
    events: set[str]  # top-level event ids that had an instance in the window then
    issued: datetime
    moves: dict[str, int] = field(default_factory=dict)  # event id → moves, then


@dataclass
class Round:
    """One round's pages, computed when the round starts (a consistent snapshot)."""

    id: str
    user_id: str
    window: tuple[datetime, datetime]
    pages: list[list[Any]]  # each item: an Instance or a Gone (both rendered late)
    delta_token: str
    issued: datetime
    page_tokens: list[str] = field(default_factory=list)  # $skiptoken of page i+1


class DeltaEngine:
    def __init__(self, store: CalendarStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.codec = TokenCodec()
        self.max_states_per_mailbox = 200
        self.max_rounds = 5000
        # Documented quirk: changes to events outside the window come as @removed.
        self.report_out_of_window_changes = True
        # Both in the order issued (the clock only moves forward), so what is too old is
        # always at the front: pruning looks only at what it drops, never at every state
        # (a scan per request grew with the states of every mailbox).
        self._states: dict[str, SyncState] = {}
        self._rounds: dict[str, Round] = {}
        self._per_mailbox: dict[str, deque[str]] = {}  # state ids by user, oldest first

    # ------------------------------------------------------------------ rounds
    def start_round(
        self,
        user_id: str,
        *,
        window: tuple[datetime, datetime] | None,
        delta_token: str | None,
        page_size: int,
    ) -> tuple[Round, int]:
        """A new round: full (window given) or incremental (from a deltaLink's token)."""
        self._prune()
        previous: SyncState | None = None
        if delta_token is not None:
            previous = self._state_for(user_id, delta_token)
            window = (previous.window_start, previous.window_end)
        if window is None:
            raise ValueError("a full round needs a window")
        start, end = window
        current = self._store.instances(user_id, start, end)
        seen = {item.id: item.change_key for item in current}
        events = {item.event.id for item in current}
        moves = {e: self._store.moves[e] for e in events if e in self._store.moves}
        if previous is None:
            entries: list[Any] = list(current)
        else:
            known_moves = previous.moves
            entries = [i for i in current if previous.seen.get(i.id) != i.change_key]
            entries += [
                Gone(gone, known_moves.get(master_of(gone), 0))
                for gone in previous.seen
                if gone not in seen
            ]
            entries += [
                Gone(known, known_moves.get(master, 0), moved_only=True)
                for known in previous.seen
                if known in seen
                and known_moves.get(master := master_of(known), 0) != moves.get(master, 0)
            ]
            if self.report_out_of_window_changes:
                entries += self._outside_changes(user_id, previous, seen, events)
        now = self._clock.now()
        state = SyncState(secrets.token_hex(12), user_id, start, end, seen, events, now, moves)
        self._keep(state)
        size = max(1, min(page_size, MAX_PAGE_SIZE))
        pages = [entries[i : i + size] for i in range(0, len(entries), size)] or [[]]
        while self._store.empty_pages > 0:  # the fault knob: empty pages that link on
            self._store.empty_pages -= 1
            pages.insert(0, [])
        round_ = Round(
            id=secrets.token_hex(12),
            user_id=user_id,
            window=window,
            pages=pages,
            delta_token=self.codec.seal(self._payload("delta", state.id, user_id, window, now)),
            issued=now,
        )
        for index in range(1, len(pages)):
            payload = self._payload("skip", round_.id, user_id, window, now) | {"p": index}
            round_.page_tokens.append(self.codec.seal(payload))
        if len(pages) > 1:
            self._rounds[round_.id] = round_
        return round_, 0

    def continue_round(self, user_id: str, skip_token: str) -> tuple[Round, int]:
        """The page a nextLink's $skiptoken names."""
        payload = self._open(user_id, skip_token, "skip")
        round_ = self._rounds.get(str(payload.get("i")))
        window = _window_of(payload)
        if round_ is None or self._too_old(round_.issued):
            raise SyncStateGone(window)
        index = int(payload.get("p", 0))
        if not 0 < index < len(round_.pages):
            raise InvalidStateToken()
        return round_, index

    def window_of_token(self, token: str) -> tuple[datetime, datetime] | None:
        """The window sealed in one of our tokens (for a 410's Location), else None."""
        payload = self.codec.open(token)
        return _window_of(payload) if payload is not None else None

    # ------------------------------------------------------------------ helpers
    def _state_for(self, user_id: str, token: str) -> SyncState:
        payload = self._open(user_id, token, "delta")
        state = self._states.get(str(payload.get("i")))
        if state is None or self._too_old(state.issued):
            self._states.pop(str(payload.get("i")), None)
            raise SyncStateGone(_window_of(payload))
        return state

    def _open(self, user_id: str, token: str, kind: str) -> dict[str, Any]:
        payload = self.codec.open(token)
        if payload is None or payload.get("k") != kind or payload.get("u") != user_id:
            raise InvalidStateToken()
        return payload

    def _outside_changes(
        self, user_id: str, previous: SyncState, seen: dict[str, str], events: set[str]
    ) -> list[Gone]:
        """@removed for events never in the window that were added/updated/deleted since."""
        out: list[Gone] = []
        known = previous.events | events
        moves = self._store.moves
        for event in self._store.events_of(user_id):
            if event.id in known or event.id in seen:
                continue
            if event.modified > previous.issued:
                out.append(Gone(event.id, moves.get(event.id, 0)))
        for gone in self._store.tombstones_since(user_id, previous.issued):
            if gone not in known and gone not in previous.seen:
                out.append(Gone(gone, moves.get(gone, 0)))
        return out

    def _too_old(self, issued: datetime) -> bool:
        return self._clock.now() - issued > self._store.delta_token_max_age

    def _keep(self, state: SyncState) -> None:
        """Keeps a new state; past `max_states_per_mailbox`, the mailbox's oldest goes."""
        self._states[state.id] = state
        ids = self._per_mailbox.setdefault(state.user_id, deque())
        ids.append(state.id)
        while len(ids) > self.max_states_per_mailbox:
            self._states.pop(ids.popleft(), None)

    def _prune(self) -> None:
        """Drops the states and rounds past `delta_token_max_age` (from the front: they are
        in the order issued) and the oldest rounds past `max_rounds`."""
        oldest = self._clock.now() - self._store.delta_token_max_age
        while self._states:
            key, state = next(iter(self._states.items()))
            if state.issued >= oldest:
                break
            del self._states[key]
            ids = self._per_mailbox.get(state.user_id)
            if ids and ids[0] == key:  # a mailbox's ids are in the same order
                ids.popleft()
                if not ids:
                    del self._per_mailbox[state.user_id]
        while self._rounds:
            key, round_ = next(iter(self._rounds.items()))
            if round_.issued >= oldest and len(self._rounds) <= self.max_rounds:
                break
            del self._rounds[key]

    @staticmethod
    def _payload(
        kind: str, ident: str, user_id: str, window: tuple[datetime, datetime], now: datetime
    ) -> dict[str, Any]:
        return {
            "k": kind,
            "i": ident,
            "u": user_id,
            "s": window[0].isoformat(),
            "e": window[1].isoformat(),
            "t": now.isoformat(),
        }

    # ------------------------------------------------------------------ persistence
    def reset(self) -> None:
        self._states.clear()
        self._rounds.clear()
        self._per_mailbox.clear()
        self.report_out_of_window_changes = True

    def to_dict(self) -> dict[str, Any]:
        """Sync states survive an emulator restart (--state), as Graph's do; rounds don't."""
        return {
            "key": self.codec.key_b64(),
            "states": [
                {
                    "id": s.id,
                    "user_id": s.user_id,
                    "window_start": s.window_start.isoformat(),
                    "window_end": s.window_end.isoformat(),
                    "seen": s.seen,
                    "events": sorted(s.events),
                    "issued": s.issued.isoformat(),
                    "moves": s.moves,
                }
                for s in self._states.values()
            ],
        }

    def load_dict(self, data: dict[str, Any]) -> None:
        self.reset()
        if data.get("key"):
            self.codec = TokenCodec.from_b64(str(data["key"]))
        for raw in data.get("states", []):
            state = SyncState(
                id=raw["id"],
                user_id=raw["user_id"],
                window_start=datetime.fromisoformat(raw["window_start"]),
                window_end=datetime.fromisoformat(raw["window_end"]),
                seen=dict(raw["seen"]),
                events=set(raw.get("events", [])),
                issued=datetime.fromisoformat(raw["issued"]),
                moves=dict(raw.get("moves", {})),
            )
            self._keep(state)


def _window_of(payload: dict[str, Any]) -> tuple[datetime, datetime] | None:
    try:
        return datetime.fromisoformat(payload["s"]), datetime.fromisoformat(payload["e"])
    except (KeyError, TypeError, ValueError):
        return None


def is_instance(entry: Any) -> bool:
    return isinstance(entry, Instance)


def master_of(instance_id: str) -> str:
    """The top-level event of an instance id (an occurrence's series, else itself)."""
    return instance_id.partition(OCCURRENCE)[0]
