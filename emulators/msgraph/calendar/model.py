"""How the emulator keeps an event: Graph's own JSON plus the few things it computes from."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def new_event_id() -> str:
    """An event's immutable id: opaque, Outlook-looking (base64url of random bytes behind
    the AAkALg prefix immutable ids carry). Default ids are derived from it (`ids.py`)."""
    raw = base64.urlsafe_b64encode(uuid.uuid4().bytes + secrets.token_bytes(24)).decode()
    return "AAkALg" + raw.rstrip("=")


def new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(12)).decode()


STAMP = "%Y%m%dT%H%M%SZ"  # how an occurrence's original start (UTC) is keyed


def stamp_of(original_start: datetime) -> str:
    return original_start.strftime(STAMP)


def occurrence_id(master_id: str, original_start: datetime) -> str:
    stamp = stamp_of(original_start)
    return f"{master_id}.OCC{base64.urlsafe_b64encode(stamp.encode()).decode().rstrip('=')}"


def split_occurrence_id(event_id: str) -> tuple[str, str] | None:
    """(master id, original start stamp) for an occurrence id, else None."""
    master, sep, encoded = event_id.rpartition(".OCC")
    if not sep or not master:
        return None
    try:
        stamp = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return master, stamp


@dataclass
class OccurrenceOverride:
    """An exception of a series: one occurrence moved/edited, or cancelled."""

    cancelled: bool = False
    fields: dict[str, Any] = field(default_factory=dict)  # subject, location, ...
    start: datetime | None = None
    end: datetime | None = None
    change_key: str = field(default_factory=new_change_key)
    modified: datetime | None = None


@dataclass
class StoredEvent:
    id: str
    owner: str  # the mailbox (user id)
    data: dict[str, Any]  # Graph JSON properties as set by clients (no computed ones)
    start: datetime  # UTC; for a series: its first occurrence
    end: datetime
    start_tz: str
    end_tz: str
    ical_uid: str
    created: datetime
    modified: datetime
    change_key: str = field(default_factory=new_change_key)
    transaction_id: str | None = None
    is_organizer: bool = True
    organizer_event: tuple[str, str] | None = None  # attendee copies: (owner, event id)
    exceptions: dict[str, OccurrenceOverride] = field(default_factory=dict)

    @property
    def recurrence(self) -> dict[str, Any] | None:
        value = self.data.get("recurrence")
        return value if isinstance(value, dict) else None

    @property
    def duration(self) -> Any:
        return self.end - self.start
