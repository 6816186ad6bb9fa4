"""Outlook item ids: immutable ids, and the default (REST) ids that change on a move.

"Obtain immutable identifiers for Outlook resources"
(learn.microsoft.com/graph/outlook-immutable-id): an event's default id changes when the
item moves between folders (e.g. to Deleted Items and back); with
`Prefer: IdType="ImmutableId"` on a request (each request: the header applies only to the
one it's sent with) the answer carries ids that don't, and a subscription created with it
notifies with them. Both forms are accepted as input.

The emulator stores events under their immutable id. The default id is derived from it and
the number of moves the event went through, so an old default id stops working after a
move (404), as in Outlook.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping

REST_PREFIX = "AAMkAG"  # what default Outlook REST ids look like
OCCURRENCE = ".OCC"  # occurrence ids: "{master id}.OCC{original start}"
IMMUTABLE_PREFERENCE = "immutableid"
IMMUTABLE_APPLIED = 'IdType="ImmutableId"'  # the Preference-Applied answer


def parse_prefer(values: Iterable[str]) -> dict[str, str]:
    """Every `Prefer` header of a request → {lower-cased name: value} (RFC 7240: several
    preferences in one header, comma-separated, or in several headers)."""
    prefs: dict[str, str] = {}
    for header in values:
        for part in header.split(","):
            name, _, value = part.strip().partition("=")
            if name:
                prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


def asks_immutable(prefs: Mapping[str, str]) -> bool:
    """`Prefer: IdType="ImmutableId"` is among the preferences."""
    return prefs.get("idtype", "").lower() == IMMUTABLE_PREFERENCE


def rest_id(immutable_id: str, moves: int) -> str:
    raw = f"{moves}:{immutable_id}".encode()
    return REST_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_rest_id(value: str) -> tuple[str, int] | None:
    """(immutable id, moves) for a default id of ours, else None."""
    if not value.startswith(REST_PREFIX):
        return None
    encoded = value[len(REST_PREFIX) :]
    try:
        text = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    moves, sep, immutable = text.partition(":")
    if not sep or not moves.isdigit() or not immutable:
        return None
    return immutable, int(moves)


class IdForms:
    """How one request sees ids: immutable (it asked) or default (it didn't)."""

    def __init__(self, moves: Mapping[str, int], immutable: bool) -> None:
        self._moves = moves
        self.immutable = immutable

    def outward(self, stored_id: str) -> str:
        """A stored (immutable) event or occurrence id as this request sees it."""
        if self.immutable:
            return stored_id
        master, sep, occurrence = stored_id.partition(OCCURRENCE)
        return rest_id(master, self._moves.get(master, 0)) + sep + occurrence

    def outward_as_of(self, stored_id: str, moves: int) -> str:
        """`stored_id` as this request knew it when its event had made `moves` moves (for
        the @removed of an instance the client saw in an earlier round)."""
        if self.immutable:
            return stored_id
        master, sep, occurrence = stored_id.partition(OCCURRENCE)
        return rest_id(master, moves) + sep + occurrence


def inward(wire_id: str, moves: Mapping[str, int], gone: Callable[[], Exception]) -> str:
    """Any id a client sends (either form) → the stored id; a default id from before the
    event's latest move no longer names it (`gone()` is raised)."""
    master, sep, occurrence = wire_id.partition(OCCURRENCE)
    parsed = parse_rest_id(master)
    if parsed is None:
        return wire_id
    immutable, seen_moves = parsed
    if seen_moves != moves.get(immutable, 0):
        raise gone()
    return immutable + sep + occurrence
