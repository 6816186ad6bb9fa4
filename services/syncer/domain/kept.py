"""What the syncer keeps of an event between rounds (`calendar_items`), and no more
(issue 9, "private means private"):

- a 1:1: its allowed fields (the meeting is published anyway; a roster change may change
  the member's name on it, or end it); a 1:1 deleted or cancelled in Outlook is kept so,
  flagged cancelled, and a full round does not forget it (the API lists it, flagged, for
  cadence history);
- an event with exactly the user and one other person, not on the team: only a keyed hash
  (HMAC-SHA256) of that person's address, so a roster change that adds them is noticed
  without keeping their address, the subject or the times; the event is then fetched
  from Graph again;
- anything else — private, all-day, a series master, three or more people, one person,
  no times: nothing (`kept_form` is None; an item of it exists only while what was
  published of it, when it was a 1:1, is kept). No roster change can make it one; Graph's
  next change notice for it comes with the whole event again. An earlier version kept a
  marker (`kind: private` / `not_one_on_one`): read as nothing, dropped by the next full
  round. Keeping nothing also spares an import a write for most of a calendar's events.

The hash key is derived from the token-encryption keys (`TokenCipher`'s keys, so from the
same settings or vault), one per key id; a kept hash names the key id it was made under,
so rotating the active key keeps earlier hashes comparable while that key is configured
(a full round rewrites them under the new key).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.syncer.domain.one_on_one import NotOneOnOne, OneOnOne, people_on
from shared.graph.event import GraphEvent

HASH_PURPOSE = b"smvue/syncer/calendar-item-address/v1"

ONE_ON_ONE = "one_on_one"
CANCELLED = "cancelled"  # a 1:1 cancelled or deleted: kept (and listed) as history
CANDIDATE = "candidate"  # the user and one other person, not (yet) on the team
NEVER = "not_one_on_one"  # an earlier version's marker of "whatever the roster says"


@dataclass(frozen=True)
class AddressHasher:
    """Keyed hashes of addresses: HMAC-SHA256 under a key derived per key id."""

    keys: Mapping[str, bytes]
    active_key_id: str

    @classmethod
    def derived_from(cls, keys: Mapping[str, bytes], active_key_id: str) -> AddressHasher:
        derived = {
            key_id: hmac.new(key, HASH_PURPOSE, hashlib.sha256).digest()
            for key_id, key in keys.items()
        }
        return cls(derived, active_key_id)

    def digest(self, address: str, key_id: str | None = None) -> str | None:
        key = self.keys.get(key_id or self.active_key_id)
        if key is None:
            return None  # a key no longer configured: nothing can match
        return hmac.new(key, address.strip().lower().encode(), hashlib.sha256).hexdigest()

    def kept(self, address: str) -> dict[str, str]:
        return {"key_id": self.active_key_id, "hmac": str(self.digest(address))}

    def matches(self, kept: Mapping[str, Any], addresses: list[str]) -> str | None:
        """The address among `addresses` the kept hash stands for, if any."""
        key_id = str(kept.get("key_id", ""))
        wanted = str(kept.get("hmac", ""))
        for address in addresses:
            digest = self.digest(address, key_id)
            if digest is not None and hmac.compare_digest(digest, wanted):
                return address
        return None


def kept_form(
    event: GraphEvent,
    decision: OneOnOne | NotOneOnOne,
    owner_addresses: list[str] | set[str] | frozenset[str] | tuple[str, ...],
    hasher: AddressHasher,
) -> dict[str, Any] | None:
    """The calendar item document's content for this event (its key is the event id);
    None: nothing is kept of it."""
    if isinstance(decision, OneOnOne):
        return {
            "kind": CANCELLED if event.is_cancelled else ONE_ON_ONE,
            "event": allowed_json(event),
        }
    if decision is NotOneOnOne.NOT_A_TEAM_MEMBER:
        owners = {address.lower() for address in owner_addresses}
        [other] = [address for address in people_on(event) if address not in owners]
        return {"kind": CANDIDATE, "other": hasher.kept(other)}
    return None  # private, or no roster can make it a 1:1


def allowed_json(event: GraphEvent) -> dict[str, Any]:
    """Allowed fields only, in Graph's own names, so a re-parse gives the same event."""
    return event.model_dump(mode="json", by_alias=True, exclude_none=True)
