"""When a successful delta round refreshes the Integrations card ("last synced").

Every round used to: one registry write, a `connection.status_changed` record and a
read-model write per Outlook change, for a time the card shows to the minute. Now a round
refreshes the card when someone is looking for it (a Sync Now waits for this round), when
the card may show an error the syncer put there (`card_synced_at` cleared), and otherwise
at most every `every`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any


def card_due(
    state: Mapping[str, Any], now: datetime, every: timedelta, *, sync_now_waiting: bool
) -> bool:
    """`state` is the connection's sync state as the round read it."""
    if sync_now_waiting:
        return True
    last = state.get("card_synced_at")
    if not isinstance(last, datetime):
        return True
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    return bool(now - last >= every)
