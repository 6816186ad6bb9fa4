"""Every mailbox's events: create, read, update, delete, cancel, and the instances a
calendar view sees (series expanded, exceptions applied). Each change is published on the
change feed, so subscriptions notify exactly as Outlook would.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal

from emulators.msgraph.calendar import recurrence
from emulators.msgraph.calendar.model import (
    STAMP,
    OccurrenceOverride,
    StoredEvent,
    new_change_key,
    new_event_id,
    occurrence_id,
    split_occurrence_id,
    stamp_of,
)
from emulators.msgraph.calendar.timezones import parse_date_time_time_zone, zone
from emulators.msgraph.changes import ChangeFeed, ChangeType, EventChange
from emulators.msgraph.clock import Clock
from emulators.msgraph.directory import Directory, User
from emulators.msgraph.errors import GraphError

WRITABLE = frozenset(
    {
        "subject",
        "body",
        "start",
        "end",
        "location",
        "locations",
        "attendees",
        "isOnlineMeeting",
        "onlineMeetingProvider",
        "sensitivity",
        "isAllDay",
        "showAs",
        "importance",
        "categories",
        "recurrence",
        "reminderMinutesBeforeStart",
        "isReminderOn",
        "responseRequested",
        "allowNewTimeProposals",
        "transactionId",
        "singleValueExtendedProperties",
        "hideAttendees",
        "originalStartTimeZone",
        "originalEndTimeZone",
    }
)
OCCURRENCE_WRITABLE = WRITABLE - {"recurrence", "transactionId"}
# Enum members from the v1.0 CSDL (sensitivity, importance, freeBusyStatus, attendeeType...).
ENUMS: dict[str, frozenset[str]] = {
    "sensitivity": frozenset({"normal", "personal", "private", "confidential"}),
    "importance": frozenset({"low", "normal", "high"}),
    "showAs": frozenset({"unknown", "free", "tentative", "busy", "oof", "workingElsewhere"}),
    "onlineMeetingProvider": frozenset(
        {"unknown", "skypeForBusiness", "skypeForConsumer", "teamsForBusiness"}
    ),
}
ATTENDEE_TYPES = frozenset({"required", "optional", "resource"})
BODY_TYPES = frozenset({"text", "html"})
# What Graph does for a Teams meeting asked by a user who can't have one. Issues on the Graph
# docs repo report a 201 with isOnlineMeeting false / provider unknown / no onlineMeeting
# (microsoftgraph/microsoft-graph-docs#9741, #22355), others a 400 (#7864). "silent" (the
# default, as Graph does) makes the event without a meeting; "error" answers 400.
UnlicensedTeams = Literal["error", "silent"]


def combined_change_key(series_key: str, override: OccurrenceOverride) -> str:
    digest = hashlib.sha256(f"{series_key}/{override.change_key}".encode()).digest()
    return base64.b64encode(digest[:12]).decode()


def not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


@dataclass(frozen=True)
class Instance:
    """One thing a calendar view shows: a single event, an occurrence or an exception."""

    event: StoredEvent
    id: str
    start: datetime
    end: datetime
    kind: str  # singleInstance | occurrence | exception | seriesMaster
    change_key: str
    modified: datetime
    override: OccurrenceOverride | None = None
    original_start: datetime | None = None


class CalendarStore:
    def __init__(self, clock: Clock, directory: Directory, changes: ChangeFeed) -> None:
        self._clock = clock
        self._directory = directory
        self._changes = changes
        self.mailboxes: dict[str, dict[str, StoredEvent]] = {}
        self.invitations: list[dict[str, Any]] = []
        # Deleted top-level events per mailbox (id → when), for delta's @removed of items it
        # never returned (documented: out-of-window changes come as @removed too).
        self.tombstones: dict[str, dict[str, datetime]] = {}
        # How often each event (by immutable id) moved between folders: its default id
        # changes with every move (calendar/ids.py). Kept after deletion for @removed ids.
        self.moves: dict[str, int] = {}
        # calendarView delta tokens older than this are gone (410). Outlook's limit is a cache
        # size, not a fixed age (delta-query-overview "Token duration"); 7 days like directory.
        self.delta_token_max_age = timedelta(days=7)
        self.unlicensed_teams: UnlicensedTeams = "silent"
        # Fault knob: the next N list or delta pages come back empty, with a nextLink to the
        # same items (a client must follow a nextLink whatever the page holds).
        self.empty_pages = 0

    # ---------------------------------------------------------------- reads
    def events_of(self, user_id: str) -> list[StoredEvent]:
        return list(self.mailboxes.get(user_id, {}).values())

    def get(self, user_id: str, event_id: str) -> StoredEvent:
        event = self.mailboxes.get(user_id, {}).get(event_id)
        if event is None:
            raise not_found()
        return event

    def find(self, user_id: str, event_id: str) -> tuple[StoredEvent, datetime | None]:
        """An event, or the series and original start an occurrence id stands for."""
        direct = self.mailboxes.get(user_id, {}).get(event_id)
        if direct is not None:
            return direct, None
        parts = split_occurrence_id(event_id)
        if parts is None:
            raise not_found()
        master = self.get(user_id, parts[0])
        try:
            original = datetime.strptime(parts[1], STAMP).replace(tzinfo=UTC)
        except ValueError:
            raise not_found() from None
        if master.recurrence is None or not recurrence.is_occurrence(
            master.recurrence, master.start, master.start_tz, original
        ):
            raise not_found()
        override = master.exceptions.get(parts[1])
        if override is not None and override.cancelled:
            raise not_found()
        return master, original

    def instance(self, user_id: str, event_id: str) -> Instance:
        event, original = self.find(user_id, event_id)
        if original is None:
            kind = "seriesMaster" if event.recurrence else "singleInstance"
            return Instance(
                event, event.id, event.start, event.end, kind, event.change_key, event.modified
            )
        return self._occurrence(event, original)

    def instances(self, user_id: str, start: datetime, end: datetime) -> list[Instance]:
        """What `calendarView` shows for [start, end): overlapping items, series expanded."""
        out: list[Instance] = []
        for event in self.events_of(user_id):
            if event.recurrence is None:
                if event.start < end and event.end > start:
                    out.append(
                        Instance(
                            event,
                            event.id,
                            event.start,
                            event.end,
                            "singleInstance",
                            event.change_key,
                            event.modified,
                        )
                    )
                continue
            span = event.duration
            originals = set(
                recurrence.occurrences(
                    event.recurrence,
                    event.start,
                    event.start_tz,
                    start - span - timedelta(days=1),
                    end,
                )
            )
            # An occurrence moved into the window from outside it still shows there.
            for stamp, override in event.exceptions.items():
                if not override.cancelled and override.start is not None and override.start < end:
                    originals.add(datetime.strptime(stamp, STAMP).replace(tzinfo=UTC))
            for original in sorted(originals):
                item = self._occurrence(event, original)
                if item.override is not None and item.override.cancelled:
                    continue
                if item.start < end and item.end > start:
                    out.append(item)
        out.sort(key=lambda i: (i.start, i.id))
        return out

    def _occurrence(self, master: StoredEvent, original: datetime) -> Instance:
        stamp = stamp_of(original)
        override = master.exceptions.get(stamp)
        start, end = original, original + master.duration
        kind, change_key, modified = "occurrence", master.change_key, master.modified
        if override is not None and not override.cancelled:
            start = override.start or start
            end = override.end or end
            # Changes when the exception or its series changes, stable otherwise.
            kind, change_key = "exception", combined_change_key(master.change_key, override)
            modified = max(modified, override.modified or modified)
        return Instance(
            master,
            occurrence_id(master.id, original),
            start,
            end,
            kind,
            change_key,
            modified,
            override,
            original,
        )

    def etag_of(self, user_id: str, event_id: str) -> str | None:
        try:
            return f'W/"{self.instance(user_id, event_id).change_key}"'
        except GraphError:
            return None

    # ---------------------------------------------------------------- writes
    def create(self, user: User, body: dict[str, Any]) -> tuple[StoredEvent, bool]:
        """(event, created); a repeated transactionId returns the existing event, as the
        event resource documents ("to avoid redundant POST operations ... client retries")."""
        _check_writable(body, WRITABLE)
        transaction_id = body.get("transactionId")
        if transaction_id:
            for existing in self.events_of(user.id):
                if existing.transaction_id == transaction_id:
                    return existing, False
        data = _normalise(body)
        data.pop("transactionId", None)
        self._check_online_meeting(user, data)
        start, start_tz = parse_date_time_time_zone(body.get("start"), "start")
        end, end_tz = parse_date_time_time_zone(body.get("end"), "end")
        if end < start:
            raise GraphError(
                400, "ErrorInvalidRequest", "The end of the event is before its start."
            )
        _check_all_day(bool(data.get("isAllDay")), start, start_tz, end, end_tz)
        if data.get("recurrence"):
            data["recurrence"] = recurrence.validate(data["recurrence"])
        now = self._clock.now()
        event = StoredEvent(
            id=new_event_id(),
            owner=user.id,
            data=data,
            start=start,
            end=end,
            start_tz=start_tz,
            end_tz=end_tz,
            ical_uid="040000008200E00074C5B7101A82E008" + uuid.uuid4().hex.upper(),
            created=now,
            modified=now,
            transaction_id=transaction_id,
        )
        self.mailboxes.setdefault(user.id, {})[event.id] = event
        self._publish(user.id, event.id, "created")
        self._invite(user, event, "request")
        return event, True

    def update(
        self, user: User, event_id: str, body: dict[str, Any], if_match: str | None
    ) -> Instance:
        """PATCH: a series/single event, or one occurrence (which becomes an exception)."""
        event, original = self.find(user.id, event_id)
        self._check_if_match(user.id, event_id, if_match)
        now = self._clock.now()
        if original is None:
            _check_writable(body, WRITABLE)
            patch = _normalise(body)
            if "transactionId" in patch and patch.pop("transactionId") != event.transaction_id:
                raise GraphError(
                    400,
                    "ErrorInvalidPropertyUpdate",
                    "transactionId can't be changed once the event is created.",
                )
            if patch.get("recurrence"):
                patch["recurrence"] = recurrence.validate(patch["recurrence"])
            merged = {**event.data, **patch}
            self._check_online_meeting(user, merged)
            start, start_tz = event.start, event.start_tz
            end, end_tz = event.end, event.end_tz
            if "start" in body:
                start, start_tz = parse_date_time_time_zone(body["start"], "start")
            if "end" in body:
                end, end_tz = parse_date_time_time_zone(body["end"], "end")
            if end < start:
                raise GraphError(
                    400, "ErrorInvalidRequest", "The end of the event is before its start."
                )
            _check_all_day(bool(merged.get("isAllDay")), start, start_tz, end, end_tz)
            # Changing a series' pattern or times drops its exceptions, as Outlook does.
            if event.recurrence is not None and ({"recurrence", "start", "end"} & body.keys()):
                event.exceptions.clear()
            event.data = merged
            event.start, event.start_tz, event.end, event.end_tz = start, start_tz, end, end_tz
            event.change_key = new_change_key()
            event.modified = now
            self._publish(user.id, event.id, "updated")
            self._invite(user, event, "update")
        else:
            _check_writable(body, OCCURRENCE_WRITABLE)
            stamp = stamp_of(original)
            override = event.exceptions.get(stamp) or OccurrenceOverride()
            fields = {**override.fields, **_normalise(body)}
            new_start = override.start or original
            new_end = override.end or (original + event.duration)
            start_tz, end_tz = event.start_tz, event.end_tz
            if "start" in body:
                new_start, start_tz = parse_date_time_time_zone(body["start"], "start")
            if "end" in body:
                new_end, end_tz = parse_date_time_time_zone(body["end"], "end")
            if new_end < new_start:
                raise GraphError(
                    400, "ErrorInvalidRequest", "The end of the event is before its start."
                )
            all_day = bool({**event.data, **fields}.get("isAllDay"))
            _check_all_day(all_day, new_start, start_tz, new_end, end_tz)
            override.fields = fields
            override.start, override.end = new_start, new_end
            override.change_key = new_change_key()
            override.modified = now
            event.exceptions[stamp] = override
            event.modified = now
            self._publish(user.id, event_id, "updated")
            self._publish(user.id, event.id, "updated")
            self._invite(user, event, "update", occurrence=stamp)
        return self.instance(user.id, event_id)

    def delete(self, user: User, event_id: str, if_match: str | None = None) -> None:
        """DELETE: the organizer's delete of a meeting sends a cancellation to attendees."""
        event, original = self.find(user.id, event_id)
        self._check_if_match(user.id, event_id, if_match)
        now = self._clock.now()
        if original is None:
            del self.mailboxes[user.id][event.id]
            self.tombstones.setdefault(user.id, {})[event.id] = now
            self._publish(user.id, event.id, "deleted")
            self._invite(user, event, "cancel")
        else:
            stamp = stamp_of(original)
            event.exceptions[stamp] = OccurrenceOverride(cancelled=True, modified=now)
            event.modified = now
            self._publish(user.id, event_id, "deleted")
            self._publish(user.id, event.id, "updated")
            self._invite(user, event, "cancel", occurrence=stamp)

    def cancel(self, user: User, event_id: str, comment: str | None) -> None:
        """Only the organizer cancels (event-cancel: an attendee gets 400 with this message);
        attendees are told; the event leaves the organizer's calendar (Deleted Items)."""
        event, _ = self.find(user.id, event_id)
        if not event.is_organizer:
            raise GraphError(
                400,
                "ErrorAccessDenied",
                "Your request can't be completed. You need to be an organizer to cancel a meeting.",
            )
        before = len(self.invitations)
        self.delete(user, event_id)
        for invitation in self.invitations[before:]:
            invitation["comment"] = comment

    # ---------------------------------------------------------------- helpers
    def _check_if_match(self, user_id: str, event_id: str, if_match: str | None) -> None:
        if if_match is None:
            return
        if not _etag_matches(if_match, self.instance(user_id, event_id).change_key):
            raise GraphError(
                412,
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the change key "
                "passed in the request does not match the current change key for the item.",
            )

    def _check_online_meeting(self, user: User, data: dict[str, Any]) -> None:
        wants_teams = bool(data.get("isOnlineMeeting")) and (
            data.get("onlineMeetingProvider", "teamsForBusiness") == "teamsForBusiness"
        )
        if not wants_teams:
            data.pop("onlineMeeting", None)
            if not data.get("isOnlineMeeting"):
                data.pop("onlineMeetingProvider", None)
            return
        if not user.teams_licence:
            if self.unlicensed_teams == "silent":
                data["isOnlineMeeting"] = False
                data.pop("onlineMeetingProvider", None)
                data.pop("onlineMeeting", None)
                return
            raise GraphError(
                400,
                "ErrorInvalidRequest",
                "The online meeting provider 'teamsForBusiness' is not allowed for this user's "
                "calendar (allowedOnlineMeetingProviders does not include it).",
            )
        data["onlineMeetingProvider"] = "teamsForBusiness"
        if not (data.get("onlineMeeting") or {}).get("joinUrl"):
            thread = secrets.token_hex(16)
            data["onlineMeeting"] = {
                "joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting_"
                f"{thread}%40thread.v2/0?context=%7b%22Tid%22%3a%22{user.tenant_id}%22%2c"
                f"%22Oid%22%3a%22{user.id}%22%7d",
                "conferenceId": str(secrets.randbelow(10**9)),
                "tollNumber": None,
                "tollFreeNumbers": [],
                "phones": [],
                "quickDial": None,
            }

    def _publish(self, user_id: str, event_id: str, change: ChangeType) -> None:
        self._changes.publish(EventChange(user_id, event_id, change))

    def _invite(
        self, organizer: User, event: StoredEvent, kind: str, occurrence: str | None = None
    ) -> None:
        """Records the invitation/update/cancellation Outlook sends, and mirrors the meeting
        into attendees' mailboxes when they exist in the emulator."""
        if not event.is_organizer:
            return
        for attendee in event.data.get("attendees") or []:
            address = str((attendee.get("emailAddress") or {}).get("address") or "")
            if not address or address.lower() == organizer.mail.lower():
                continue
            self.invitations.append(
                {
                    "kind": kind,
                    "from": organizer.mail,
                    "to": address,
                    "eventId": event.id,
                    "iCalUId": event.ical_uid,
                    "subject": event.data.get("subject", ""),
                    "occurrence": occurrence,
                    "at": self._clock.now().isoformat(),
                }
            )
            invitee = self._directory.find_user(address)
            if invitee is not None and invitee.id != organizer.id:
                self._mirror(invitee, event, kind, occurrence)

    def _mirror(self, invitee: User, event: StoredEvent, kind: str, occurrence: str | None) -> None:
        """The attendee's copy follows the organizer's event; a cancelled meeting (or
        occurrence) stays in the attendee's calendar with isCancelled true until removed."""
        box = self.mailboxes.setdefault(invitee.id, {})
        copy_of = next(
            (e for e in box.values() if e.organizer_event == (event.owner, event.id)), None
        )
        now = self._clock.now()
        if copy_of is None:
            if kind == "cancel":
                return
            copy_of = StoredEvent(
                id=new_event_id(),
                owner=invitee.id,
                data={},
                start=event.start,
                end=event.end,
                start_tz=event.start_tz,
                end_tz=event.end_tz,
                ical_uid=event.ical_uid,
                created=now,
                modified=now,
                is_organizer=False,
                organizer_event=(event.owner, event.id),
            )
            box[copy_of.id] = copy_of
            change: ChangeType = "created"
        else:
            change = "updated"
        was_cancelled = bool(copy_of.data.get("isCancelled"))
        copy_of.data = copy.deepcopy(event.data)
        copy_of.data.pop("singleValueExtendedProperties", None)
        copy_of.start, copy_of.end = event.start, event.end
        copy_of.start_tz, copy_of.end_tz = event.start_tz, event.end_tz
        exceptions: dict[str, OccurrenceOverride] = {}
        for stamp, override in event.exceptions.items():
            mine = copy_of.exceptions.get(stamp)
            if mine is not None and (mine.cancelled or mine.fields.get("isCancelled")):
                exceptions[stamp] = mine  # removed by the attendee, or already cancelled
            elif override.cancelled:
                exceptions[stamp] = OccurrenceOverride(fields={"isCancelled": True}, modified=now)
            else:
                exceptions[stamp] = copy.deepcopy(override)
        copy_of.exceptions = exceptions
        meeting_gone = event.id not in self.mailboxes.get(event.owner, {})
        if was_cancelled or (kind == "cancel" and meeting_gone):
            copy_of.data["isCancelled"] = True
        copy_of.change_key, copy_of.modified = new_change_key(), now
        if occurrence is not None:
            original = datetime.strptime(occurrence, STAMP).replace(tzinfo=UTC)
            self._publish(invitee.id, occurrence_id(copy_of.id, original), "updated")
        self._publish(invitee.id, copy_of.id, change)

    # ---------------------------------------------------------------- persistence
    def reset(self) -> None:
        self.mailboxes.clear()
        self.invitations.clear()
        self.tombstones.clear()
        self.moves.clear()
        self.delta_token_max_age = timedelta(days=7)
        self.unlicensed_teams = "silent"
        self.empty_pages = 0

    def tombstones_since(self, user_id: str, since: datetime) -> list[str]:
        """Ids of top-level events deleted after `since` (older tombstones are pruned)."""
        box = self.tombstones.get(user_id, {})
        horizon = self._clock.now() - self.delta_token_max_age - timedelta(days=1)
        for gone in [i for i, at in box.items() if at < horizon]:
            del box[gone]
        return [i for i, at in box.items() if at > since]

    def move(self, user_id: str, event_id: str) -> StoredEvent:
        """The person moves the event to another folder and back (e.g. Deleted Items and
        back): its default id changes (immutable ids don't), and it counts as changed."""
        event = self.get(user_id, event_id)
        self.moves[event.id] = self.moves.get(event.id, 0) + 1
        event.change_key = new_change_key()
        event.modified = self._clock.now()
        self._publish(user_id, event.id, "updated")
        return event

    def to_dict(self) -> dict[str, Any]:
        return {
            "moves": dict(self.moves),
            "events": [_event_to_dict(e) for box in self.mailboxes.values() for e in box.values()],
            "invitations": self.invitations,
            "tombstones": {
                user: {i: at.isoformat() for i, at in box.items()}
                for user, box in self.tombstones.items()
            },
            "delta_token_max_age_seconds": self.delta_token_max_age.total_seconds(),
            "unlicensed_teams": self.unlicensed_teams,
        }

    def load_dict(self, data: dict[str, Any]) -> None:
        self.reset()
        for raw in data.get("events", []):
            event = _event_from_dict(raw)
            self.mailboxes.setdefault(event.owner, {})[event.id] = event
        self.invitations = list(data.get("invitations", []))
        self.moves = {str(k): int(v) for k, v in data.get("moves", {}).items()}
        self.tombstones = {
            user: {i: datetime.fromisoformat(at) for i, at in box.items()}
            for user, box in data.get("tombstones", {}).items()
        }
        if data.get("unlicensed_teams") in ("error", "silent"):
            self.unlicensed_teams = data["unlicensed_teams"]
        seconds = data.get("delta_token_max_age_seconds")
        if seconds:
            self.delta_token_max_age = timedelta(seconds=float(seconds))


_TIMES = ("start", "end", "created", "modified")


def _event_to_dict(event: StoredEvent) -> dict[str, Any]:
    raw = asdict(event)
    for name in _TIMES:
        raw[name] = getattr(event, name).isoformat()
    raw["exceptions"] = {
        stamp: {
            **asdict(o),
            "start": o.start.isoformat() if o.start else None,
            "end": o.end.isoformat() if o.end else None,
            "modified": o.modified.isoformat() if o.modified else None,
        }
        for stamp, o in event.exceptions.items()
    }
    return raw


def _event_from_dict(raw: dict[str, Any]) -> StoredEvent:
    raw = dict(raw)
    for name in _TIMES:
        raw[name] = datetime.fromisoformat(raw[name])
    if raw.get("organizer_event"):
        raw["organizer_event"] = tuple(raw["organizer_event"])
    raw["exceptions"] = {
        stamp: OccurrenceOverride(
            cancelled=o["cancelled"],
            fields=o["fields"],
            start=datetime.fromisoformat(o["start"]) if o["start"] else None,
            end=datetime.fromisoformat(o["end"]) if o["end"] else None,
            change_key=o["change_key"],
            modified=datetime.fromisoformat(o["modified"]) if o["modified"] else None,
        )
        for stamp, o in raw.get("exceptions", {}).items()
    }
    return StoredEvent(**raw)


def _check_all_day(
    is_all_day: bool, start: datetime, start_tz: str, end: datetime, end_tz: str
) -> None:
    """An all-day event "regardless of whether it's a single-day or multi-day event, start
    and end time must be set to midnight and be in the same time zone" (event resource,
    `isAllDay`, learn.microsoft.com/graph/api/resources/event), and lasts whole days. Graph
    refuses others with 400 (`ErrorPropertyValidationFailure`, as reported on
    microsoftgraph/microsoft-graph-docs#7919); what is checked is the time in the event's own
    zone (`Prefer: outlook.timezone` only changes how answers are rendered)."""
    if not is_all_day:
        return
    local_start, local_end = start.astimezone(zone(start_tz)), end.astimezone(zone(end_tz))
    at_midnight = local_start.time() == time(0) and local_end.time() == time(0)
    same_zone = zone(start_tz).key == zone(end_tz).key
    if not (at_midnight and same_zone and local_end.date() > local_start.date()):
        raise GraphError(
            400,
            "ErrorPropertyValidationFailure",
            "At least one property failed validation. An all-day event starts and ends at "
            "midnight, in one time zone, at least a day apart.",
        )


def _check_writable(body: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(k for k in body if k not in allowed and not k.startswith("@odata"))
    if unknown:
        raise GraphError(
            400,
            "RequestBodyRead",
            f"The property '{unknown[0]}' does not exist on type 'microsoft.graph.event'. "
            "Make sure to only use property names that are defined by the type.",
        )


def _normalise(body: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a create/update body, enums checked against the CSDL's members."""
    data = {k: copy.deepcopy(v) for k, v in body.items() if not k.startswith("@odata")}
    for name, members in ENUMS.items():
        if name in data and data[name] not in members:
            raise GraphError(
                400, "ErrorInvalidRequest", f"Invalid value '{data[name]}' for '{name}'."
            )
    if "body" in data:
        item = data["body"]
        kind = str((item or {}).get("contentType") or "text").lower()
        if not isinstance(item, dict) or kind not in BODY_TYPES:
            raise GraphError(400, "ErrorInvalidRequest", "Invalid itemBody.")
        data["body"] = {"contentType": kind, "content": str(item.get("content") or "")}
    for attendee in data.get("attendees") or []:
        if not isinstance(attendee, dict) or not (attendee.get("emailAddress") or {}).get(
            "address"
        ):
            raise GraphError(400, "ErrorInvalidRecipients", "An attendee has no email address.")
        attendee.setdefault("type", "required")
        if attendee["type"] not in ATTENDEE_TYPES:
            raise GraphError(400, "ErrorInvalidRequest", "Invalid attendee type.")
        attendee["emailAddress"].setdefault("name", attendee["emailAddress"]["address"])
        attendee["status"] = {"response": "none", "time": "0001-01-01T00:00:00Z"}
    return data


def _etag_matches(if_match: str, change_key: str) -> bool:
    value = if_match.strip()
    if value == "*":
        return True
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') == change_key
