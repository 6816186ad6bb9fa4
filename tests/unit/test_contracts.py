"""Contract tests: the published schemas match the pydantic models, topics are sane."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.contracts.commands import ScheduleMeetingRequest
from shared.contracts.connections import connection_id_for
from shared.contracts.meetings import meeting_id_for
from shared.contracts.roster import Roster, RosterUpdated, TeamMember
from shared.contracts.schema_export import (
    message_name,
    message_schema,
    render_all,
    stale_schemas,
)
from shared.contracts.topics import ALL_TOPICS, AUDIT, ROSTER, all_message_types

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_schemas_dir_matches_the_models() -> None:
    assert stale_schemas(SCHEMAS) == []


@pytest.mark.parametrize("message", all_message_types(), ids=message_name)
def test_every_message_has_its_checked_in_schema(message: type) -> None:
    path = SCHEMAS / "messages" / f"{message_name(message)}.json"
    assert json.loads(path.read_text()) == message_schema(message)


def test_stale_detection_notices_a_changed_file(tmp_path: Path) -> None:
    for relative, text in render_all().items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert stale_schemas(tmp_path) == []
    (tmp_path / "messages" / "roster.updated.json").write_text("{}")
    (tmp_path / "messages" / "gone.json").write_text("{}")
    assert stale_schemas(tmp_path) == ["messages/gone.json", "messages/roster.updated.json"]


def test_asyncapi_lists_every_topic_and_dead_letter() -> None:
    document = json.loads((SCHEMAS / "asyncapi.json").read_text())
    addresses = {channel["address"] for channel in document["channels"].values()}
    for topic in ALL_TOPICS:
        assert topic.name in addresses
        assert (topic.dead_letter in addresses) == topic.has_dead_letter
    assert document["asyncapi"].startswith("3.")


def test_topic_names_are_versioned_and_unique() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))
    assert all(name.split(".")[-1].startswith("v") for name in names)


def test_audit_topic_is_never_compacted_and_kept_long() -> None:
    assert AUDIT.config["cleanup.policy"] == "delete"
    assert int(AUDIT.config["retention.ms"]) >= 365 * 24 * 3600 * 1000


def test_topic_adapter_picks_the_class_by_type() -> None:
    record = RosterUpdated.build(
        key="mgr-1",
        payload=Roster(
            manager_id="mgr-1",
            members=[TeamMember(member_id="m1", email="ana@contoso.com", display_name="Ana")],
            version=3,
            updated_at=datetime.now(UTC),
        ),
    )
    parsed = ROSTER.adapter().validate_json(record.to_bytes())
    assert parsed == record


def test_unknown_fields_and_naive_times_are_rejected() -> None:
    with pytest.raises(ValidationError):
        Roster.model_validate(
            {"manager_id": "m", "members": [], "version": 1, "updated_at": "2026-01-01T00:00:00"}
        )
    with pytest.raises(ValidationError):
        Roster.model_validate(
            {
                "manager_id": "m",
                "members": [],
                "version": 1,
                "updated_at": "2026-01-01T00:00:00Z",
                "extra": 1,
            }
        )


def test_correlation_flows_from_cause_to_effect() -> None:
    cause = RosterUpdated.build(
        key="k",
        correlation_id="corr-1",
        payload=Roster(manager_id="k", members=[], version=1, updated_at=datetime.now(UTC)),
    )
    effect = RosterUpdated.build(key="k", payload=cause.payload, cause=cause)
    assert effect.correlation_id == "corr-1"
    assert effect.causation_id == str(cause.id)


def test_schedule_command_rejects_a_malformed_time_zone() -> None:
    base = {
        "command_id": "cmd-00000001",
        "manager_id": "mgr",
        "member_name": "Ana",
        "member_email": "ana@contoso.com",
        "start": "2030-01-01T10:00:00",
        "meeting_type": "30min",
        "prep_url": "https://app.smvue.com/prep/1",
    }
    assert ScheduleMeetingRequest.model_validate({**base, "time_zone": "Europe/Paris"})
    with pytest.raises(ValidationError, match="time zone"):
        ScheduleMeetingRequest.model_validate({**base, "time_zone": "Mars/Olympus"})


def test_ids_are_stable_and_distinct() -> None:
    assert connection_id_for("u1") == connection_id_for("u1") != connection_id_for("u2")
    assert meeting_id_for("c", "e1") == meeting_id_for("c", "e1") != meeting_id_for("c", "e2")
