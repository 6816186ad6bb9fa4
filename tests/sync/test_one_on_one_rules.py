"""The help page's 1:1 rules, decided from allowed fields only."""

from __future__ import annotations

from typing import Any

import pytest

from services.syncer.domain.one_on_one import NotOneOnOne, OneOnOne, TeamMemberRef, classify
from shared.graph.event import GraphEvent

OWNER = ["ann@contoso.test", "Ann.Manager@contoso.test"]
TEAM = {"bob@contoso.test": TeamMemberRef("m-bob", "Bob@contoso.test", "Bob")}


def event(*attendees: Any, organizer: str = "ann@contoso.test", **extra: Any) -> GraphEvent:
    people = [
        a if isinstance(a, dict) else {"emailAddress": {"address": a}, "type": "required"}
        for a in attendees
    ]
    return GraphEvent.model_validate(
        {
            "id": "e1",
            "start": {"dateTime": "2026-12-01T10:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-01T10:30:00.0000000", "timeZone": "UTC"},
            "organizer": {"emailAddress": {"address": organizer}},
            "attendees": people,
            **extra,
        }
    )


def test_the_user_and_one_team_member_is_a_one_on_one() -> None:
    decision = classify(event("BOB@contoso.test"), OWNER, TEAM)
    assert isinstance(decision, OneOnOne)
    assert decision.member.member_id == "m-bob"


def test_the_member_may_be_the_organizer() -> None:
    decision = classify(event("ann@contoso.test", organizer="bob@contoso.test"), OWNER, TEAM)
    assert isinstance(decision, OneOnOne)


def test_any_of_the_users_addresses_counts_as_the_user() -> None:
    decision = classify(
        event("bob@contoso.test", organizer="ann.manager@CONTOSO.test"), OWNER, TEAM
    )
    assert isinstance(decision, OneOnOne)


def test_rooms_and_resources_do_not_count() -> None:
    room = {"emailAddress": {"address": "room1@contoso.test"}, "type": "resource"}
    assert isinstance(classify(event("bob@contoso.test", room), OWNER, TEAM), OneOnOne)


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (event("bob@contoso.test", "cy@contoso.test"), NotOneOnOne.NOT_TWO_PEOPLE),
        (event(), NotOneOnOne.NOT_TWO_PEOPLE),
        (event("bob@contoso.test", organizer="cy@contoso.test"), NotOneOnOne.NOT_TWO_PEOPLE),
        (event("cy@contoso.test"), NotOneOnOne.NOT_A_TEAM_MEMBER),
        (event("bob@contoso.test", sensitivity="private"), NotOneOnOne.PRIVATE),
        (event("bob@contoso.test", isAllDay=True), NotOneOnOne.ALL_DAY),
        (event("bob@contoso.test", type="seriesMaster"), NotOneOnOne.NOT_AN_OCCURRENCE),
    ],
)
def test_what_is_not_a_one_on_one(candidate: GraphEvent, reason: NotOneOnOne) -> None:
    assert classify(candidate, OWNER, TEAM) is reason


def test_the_event_model_has_no_body() -> None:
    parsed = event("bob@contoso.test", body={"content": "secret notes"}, bodyPreview="secret")
    assert "secret" not in parsed.model_dump_json()
    assert "body" not in GraphEvent.model_fields
