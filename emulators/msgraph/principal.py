"""Who is calling a Graph endpoint: decoded from the bearer access token."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    user_id: str
    tenant_id: str
    client_id: str  # the app (appid / azp claim); throttling is per app per mailbox
    scopes: frozenset[str]  # delegated scopes granted (the `scp` claim, split)

    def can_read_calendars(self) -> bool:
        return bool(self.scopes & {"Calendars.Read", "Calendars.ReadWrite"})

    def can_write_calendars(self) -> bool:
        return "Calendars.ReadWrite" in self.scopes
