"""The edge's checks on commands (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.ingress.commands.domain import (
    check_connection,
    check_reschedule,
    check_schedule,
    fingerprint,
)
from shared.contracts.commands import RescheduleMeetingRequest, ScheduleMeetingRequest
from shared.contracts.connections import ConnectionSnapshot, ConnectionState
from shared.contracts.user_errors import UserErrorCode

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def connection(
    state: ConnectionState = ConnectionState.CONNECTED, can_write: bool = True
) -> ConnectionSnapshot:
    return ConnectionSnapshot(
        connection_id="c", user_id="ann", state=state, can_write=can_write, version=1
    )


def schedule(**overrides: object) -> ScheduleMeetingRequest:
    values: dict[str, object] = {
        "command_id": "cmd-00000001",
        "manager_id": "ann",
        "member_name": "Bob",
        "member_email": "Bob@Contoso.test",
        "start": datetime(2026, 12, 1, 11, 0),
        "time_zone": "Europe/Paris",
        "meeting_type": "30min",
        "prep_url": "https://app.smvue.test/prep/1",
    }
    values.update(overrides)
    return ScheduleMeetingRequest.model_validate(values)


def test_the_connection_must_be_there_connected_and_writable() -> None:
    assert check_connection(connection(), writes=True) is None
    missing = check_connection(None, writes=True)
    assert missing is not None and missing.code is UserErrorCode.CALENDAR_NOT_CONNECTED
    gone = check_connection(connection(ConnectionState.DISCONNECTED), writes=False)
    assert gone is not None and (gone.status, gone.code) == (
        409,
        UserErrorCode.CALENDAR_NOT_CONNECTED,
    )
    paused = check_connection(connection(ConnectionState.REAUTHORIZATION_REQUIRED), writes=False)
    assert paused is not None and paused.code is UserErrorCode.REAUTHORIZATION_REQUIRED
    read_only = check_connection(connection(can_write=False), writes=True)
    assert read_only is not None and read_only.code is UserErrorCode.INSUFFICIENT_PERMISSIONS
    assert read_only.detail()["message"] == "Insufficient permissions to access Outlook Calendar"
    assert check_connection(connection(can_write=False), writes=False) is None


def test_schedule_needs_a_team_member_and_a_future_start() -> None:
    assert check_schedule(schedule(), {"bob@contoso.test"}, NOW) is None
    stranger = check_schedule(schedule(), {"carol@contoso.test"}, NOW)
    assert stranger is not None and stranger.status == 422
    assert "not on this manager's team" in stranger.reason
    # 09:30 in Paris is 08:30 UTC: before NOW.
    past = check_schedule(schedule(start=datetime(2026, 12, 1, 9, 30)), {"bob@contoso.test"}, NOW)
    assert past is not None and "future" in past.reason
    offset = schedule(start=NOW + timedelta(minutes=5))
    assert check_schedule(offset, {"bob@contoso.test"}, NOW) is None


def test_reschedule_needs_something_to_change_in_the_future() -> None:
    base = {"command_id": "cmd-00000002", "manager_id": "ann", "meeting_id": "mtg_1"}
    nothing = check_reschedule(RescheduleMeetingRequest.model_validate(base), NOW)
    assert nothing is not None and nothing.status == 422
    longer = RescheduleMeetingRequest.model_validate({**base, "meeting_type": "60min"})
    assert check_reschedule(longer, NOW) is None
    past = RescheduleMeetingRequest.model_validate({**base, "new_start": NOW - timedelta(hours=1)})
    assert check_reschedule(past, NOW) is not None


def test_the_same_command_has_the_same_fingerprint() -> None:
    assert fingerprint(schedule()) == fingerprint(schedule())
    assert fingerprint(schedule()) != fingerprint(schedule(meeting_type="60min"))
