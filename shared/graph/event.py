"""A Graph event, parsed through an allow-list: only the fields the product may use.

calendarView delta can't `$select`, so pages arrive with bodies. This model has no body
field at all and ignores everything not listed: the body is dropped at parse time and is
never stored, logged or published. The syncer (delta pages) and the writer (its own
writes' answers) both parse events through it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class EmailAddress(_Lenient):
    name: str | None = None
    address: str | None = None


class Recipient(_Lenient):
    email_address: EmailAddress | None = Field(default=None, alias="emailAddress")


class Attendee(Recipient):
    type: str | None = None  # required | optional | resource


class DateTimeTimeZone(_Lenient):
    date_time: str = Field(alias="dateTime")
    time_zone: str | None = Field(default=None, alias="timeZone")

    def utc(self) -> datetime:
        """Graph answers UTC when no outlook.timezone preference is sent (we send none)."""
        text = self.date_time.rstrip("Z")
        head, _, fraction = text.partition(".")
        moment = datetime.fromisoformat(head + (f".{fraction[:6]}" if fraction else ""))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class Location(_Lenient):
    display_name: str | None = Field(default=None, alias="displayName")


class OnlineMeeting(_Lenient):
    join_url: str | None = Field(default=None, alias="joinUrl")


class GraphEvent(_Lenient):
    id: str
    ical_uid: str | None = Field(default=None, alias="iCalUId")
    change_key: str | None = Field(default=None, alias="changeKey")
    subject: str | None = None
    start: DateTimeTimeZone | None = None
    end: DateTimeTimeZone | None = None
    original_start_time_zone: str | None = Field(default=None, alias="originalStartTimeZone")
    is_all_day: bool = Field(default=False, alias="isAllDay")
    is_cancelled: bool = Field(default=False, alias="isCancelled")
    sensitivity: str = "normal"
    organizer: Recipient | None = None
    attendees: list[Attendee] = Field(default_factory=list)
    location: Location | None = None
    online_meeting: OnlineMeeting | None = Field(default=None, alias="onlineMeeting")
    type: str = "singleInstance"
    series_master_id: str | None = Field(default=None, alias="seriesMasterId")
    last_modified: datetime | None = Field(default=None, alias="lastModifiedDateTime")


class RemovedEntry(_Lenient):
    id: str


def parse_delta_item(item: dict[str, Any]) -> GraphEvent | RemovedEntry:
    """A delta page item: a changed event, or an `@removed` entry."""
    if "@removed" in item:
        return RemovedEntry.model_validate(item)
    return GraphEvent.model_validate(item)
