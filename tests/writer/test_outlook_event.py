"""The events the writer makes, and how reschedules and failures are decided (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.writer.domain.failures import Refused, failure_for
from services.writer.domain.outlook_event import (
    SMVUE_TAG_ID,
    CurrentTimes,
    NothingToChange,
    graph_time,
    is_smvue_managed,
    new_event,
    reschedule_patch,
    transaction_id_for,
)
from shared.contracts.commands import MeetingType, RescheduleMeetingRequest, ScheduleMeetingRequest
from shared.contracts.user_errors import UserErrorCode
from shared.graph.errors import (
    GraphError,
    GraphForbidden,
    GraphNotFound,
    GraphThrottled,
    GraphUnavailable,
    NotConnected,
    ReauthorizationRequired,
)


def schedule(**overrides: object) -> ScheduleMeetingRequest:
    values: dict[str, object] = {
        "command_id": "cmd-00000001",
        "manager_id": "ann",
        "member_name": "Bob Member",
        "member_email": "bob@contoso.test",
        "start": datetime(2026, 12, 3, 10, 0),
        "time_zone": "Europe/Paris",
        "meeting_type": "30min",
        "prep_url": 'https://app.smvue.test/prep/42?a=1&b="x"',
    }
    values.update(overrides)
    return ScheduleMeetingRequest.model_validate(values)


def test_the_event_follows_the_help_page() -> None:
    body = new_event(schedule())
    assert body["subject"] == "1:1 with Bob Member"
    assert body["start"] == {"dateTime": "2026-12-03T10:00:00", "timeZone": "Romance Standard Time"}
    assert body["end"] == {"dateTime": "2026-12-03T10:30:00", "timeZone": "Romance Standard Time"}
    assert body["attendees"] == [
        {
            "emailAddress": {"address": "bob@contoso.test", "name": "Bob Member"},
            "type": "required",
        }
    ]
    assert body["body"]["contentType"] == "html"
    content = body["body"]["content"]
    assert 'href="https://app.smvue.test/prep/42?a=1&amp;b=%22x%22"' in content
    assert "a=1&b" not in content
    assert body["singleValueExtendedProperties"] == [{"id": SMVUE_TAG_ID, "value": "cmd-00000001"}]
    assert "isOnlineMeeting" not in body and "location" not in body


def test_teams_and_long_meetings() -> None:
    body = new_event(schedule(add_teams_link=True, meeting_type="60min"))
    assert body["isOnlineMeeting"] is True
    assert body["onlineMeetingProvider"] == "teamsForBusiness"
    assert body["location"] == {"displayName": "Microsoft Teams Meeting"}
    assert body["end"]["dateTime"] == "2026-12-03T11:00:00"


def test_a_start_with_an_offset_is_converted_to_the_time_zone() -> None:
    start = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)  # 10:00 in Paris (CET)
    body = new_event(schedule(start=start))
    assert body["start"]["dateTime"] == "2026-12-03T10:00:00"


def test_the_transaction_id_is_stable_per_command() -> None:
    assert transaction_id_for("cmd-00000001") == transaction_id_for("cmd-00000001")
    assert transaction_id_for("cmd-00000001") != transaction_id_for("cmd-00000002")
    assert new_event(schedule())["transactionId"] == transaction_id_for("cmd-00000001")


def test_only_tagged_events_are_smvues() -> None:
    assert is_smvue_managed({"singleValueExtendedProperties": [{"id": SMVUE_TAG_ID, "value": "c"}]})
    assert is_smvue_managed(
        {"singleValueExtendedProperties": [{"id": SMVUE_TAG_ID.lower(), "value": "c"}]}
    )
    assert not is_smvue_managed({})
    assert not is_smvue_managed({"singleValueExtendedProperties": []})
    assert not is_smvue_managed(
        {"singleValueExtendedProperties": [{"id": "String {x} Name Other", "value": "c"}]}
    )


CURRENT = CurrentTimes(
    start=datetime(2026, 12, 3, 9, 0, tzinfo=UTC),
    end=datetime(2026, 12, 3, 9, 30, tzinfo=UTC),
    time_zone="Europe/Paris",
)


def reschedule(**overrides: object) -> RescheduleMeetingRequest:
    values: dict[str, object] = {"command_id": "cmd-00000009", "manager_id": "ann"}
    values.update(overrides)
    values.setdefault("meeting_id", "mtg_1")
    return RescheduleMeetingRequest.model_validate(values)


def test_a_new_start_keeps_the_duration_in_the_events_zone() -> None:
    start, end, patch = reschedule_patch(CURRENT, reschedule(new_start=datetime(2026, 12, 4, 15)))
    assert start == datetime(2026, 12, 4, 14, tzinfo=UTC)
    assert end - start == timedelta(minutes=30)
    assert patch == {
        "start": {"dateTime": "2026-12-04T15:00:00", "timeZone": "Romance Standard Time"},
        "end": {"dateTime": "2026-12-04T15:30:00", "timeZone": "Romance Standard Time"},
        "isAllDay": False,  # a 1:1 has a time, even if the manager made it all-day
    }


def test_an_all_day_event_becomes_a_timed_one_of_the_default_length() -> None:
    all_day = CurrentTimes(
        datetime(2026, 12, 3, 23, tzinfo=UTC),
        datetime(2026, 12, 4, 23, tzinfo=UTC),
        "Europe/Paris",
        True,
    )
    start, end, patch = reschedule_patch(all_day, reschedule(new_start=datetime(2026, 12, 4, 15)))
    assert (start, end - start) == (datetime(2026, 12, 4, 14, tzinfo=UTC), timedelta(minutes=30))
    assert patch["isAllDay"] is False


def test_a_new_type_alone_keeps_the_start() -> None:
    start, end, _ = reschedule_patch(CURRENT, reschedule(meeting_type=MeetingType.LONG))
    assert (start, end - start) == (CURRENT.start, timedelta(minutes=60))


def test_a_new_start_with_its_own_zone_and_offset() -> None:
    new_start = datetime(2026, 12, 4, 15, tzinfo=timezone(timedelta(hours=-5)))
    start, _, patch = reschedule_patch(
        CURRENT, reschedule(new_start=new_start, time_zone="America/New_York")
    )
    assert start == datetime(2026, 12, 4, 20, tzinfo=UTC)
    assert patch["start"] == {
        "dateTime": "2026-12-04T15:00:00",
        "timeZone": "Eastern Standard Time",
    }


def test_nothing_to_change_is_refused() -> None:
    with pytest.raises(NothingToChange):
        reschedule_patch(CURRENT, reschedule())


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (GraphForbidden(403, "ErrorAccessDenied", "no"), UserErrorCode.INSUFFICIENT_PERMISSIONS),
        (GraphNotFound(404, "ErrorItemNotFound", "gone"), UserErrorCode.EVENT_NOT_FOUND),
        (GraphThrottled(429, "TooManyRequests", "slow", retry_after=120), UserErrorCode.THROTTLED),
        (GraphUnavailable(503, "x", "down"), UserErrorCode.GRAPH_UNAVAILABLE),
        (ReauthorizationRequired(), UserErrorCode.REAUTHORIZATION_REQUIRED),
        (NotConnected(), UserErrorCode.CALENDAR_NOT_CONNECTED),
        (GraphError(400, "ErrorInvalidRequest", "bad"), UserErrorCode.INVALID_COMMAND),
        (Refused(UserErrorCode.NOT_MANAGED_BY_SMVUE, "x"), UserErrorCode.NOT_MANAGED_BY_SMVUE),
    ],
)
def test_failures_map_to_user_codes(error: Exception, code: UserErrorCode) -> None:
    failure = failure_for(error)
    assert failure is not None and failure.code is code


def test_a_teams_refusal_is_told_as_a_licence_problem_only_when_teams_was_asked() -> None:
    error = GraphError(400, "ErrorInvalidRequest", "provider 'teamsForBusiness' is not allowed")
    asked = failure_for(error, wants_teams=True)
    assert asked is not None and asked.code is UserErrorCode.TEAMS_LICENCE_REQUIRED
    plain = failure_for(error)
    assert plain is not None and plain.code is UserErrorCode.INVALID_COMMAND


def test_other_errors_are_not_the_commands_fault() -> None:
    assert failure_for(RuntimeError("mongo away")) is None


def test_zones_go_to_graph_under_their_windows_names_or_as_utc() -> None:
    moment = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    assert graph_time(moment, "Europe/Madrid") == {
        "dateTime": "2026-07-01T10:00:00",
        "timeZone": "Romance Standard Time",
    }
    assert graph_time(moment, "Asia/Kolkata")["timeZone"] == "India Standard Time"
    # A zone CLDR gives no Windows name: the same instant, in UTC.
    assert graph_time(moment, "Antarctica/Troll") == {
        "dateTime": "2026-07-01T08:00:00",
        "timeZone": "UTC",
    }
