"""How long a subscription is asked for, and what to try when Graph refuses the expiry.

Microsoft's table ("subscription resource type", Maximum length of subscription per
resource type, https://learn.microsoft.com/graph/api/resources/subscription) gives Outlook
events 4230 minutes (under three days). Beyond it a create or renew is refused with
400 ExtensionError "Subscription expiration can only be 4230 minutes in the future." The
limit named in that message is the one to retry with (once, a little under it).
"""

from __future__ import annotations

import re

PUBLISHED_MAX_MINUTES = 4230  # Outlook message / event / contact
MIN_MINUTES = 45  # anything shorter would need renewing more often than a tick can promise
MARGIN_MINUTES = 30  # for the clock difference between us and Graph

_LIMIT = re.compile(r"expiration can only be (\d+) minutes", re.IGNORECASE)


def shorter_lifetime(status: int, message: str, asked_minutes: int) -> int | None:
    """The lifetime to retry with after Graph refused `asked_minutes`, or None when the
    refusal isn't about the expiry (or there is nothing shorter worth trying)."""
    text = message.lower()
    if status != 400 or "expiration" not in text or "past" in text:
        return None
    match = _LIMIT.search(message)
    if match is not None:
        shorter = int(match.group(1)) - MARGIN_MINUTES
    elif asked_minutes > PUBLISHED_MAX_MINUTES - MARGIN_MINUTES:
        shorter = PUBLISHED_MAX_MINUTES - MARGIN_MINUTES
    else:
        shorter = asked_minutes // 2
    if shorter >= asked_minutes:
        shorter = asked_minutes - MARGIN_MINUTES
    return shorter if shorter >= MIN_MINUTES else None
