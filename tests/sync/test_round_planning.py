"""Planning a round: what to publish, retract and keep, from what Graph listed (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.syncer.domain.kept import AddressHasher
from services.syncer.domain.one_on_one import TeamMemberRef
from services.syncer.domain.reconcile import Plan, Published, plan_round
from services.syncer.domain.window import Window
from shared.contracts.meetings import RemovalReason, meeting_id_for
from shared.graph.event import RemovedEntry, parse_delta_item

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
TEAM = {"bob@contoso.test": TeamMemberRef("m-bob", "bob@contoso.test", "Bob")}
HASHER = AddressHasher.derived_from({"k1": b"k" * 32, "k0": b"o" * 32}, "k1")


def raw(event_id: str, *attendees: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "subject": f"1:1 {event_id}",
        "body": {"contentType": "html", "content": "MARKER-notes"},
        "bodyPreview": "MARKER-notes",
        "start": {"dateTime": "2026-12-01T10:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-01T10:30:00.0000000", "timeZone": "UTC"},
        "organizer": {"emailAddress": {"address": "ann@contoso.test"}},
        "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
        "lastModifiedDateTime": "2026-11-20T08:00:00Z",
        **extra,
    }


def plan(items: list[dict[str, Any]], published: dict[str, Published], full: bool) -> Plan:
    return plan_round(
        [parse_delta_item(i) for i in items],
        published,
        connection_id="c1",
        manager_id="ann",
        owner_addresses=["ann@contoso.test"],
        team=TEAM,
        now=NOW,
        full=full,
        hasher=HASHER,
    )


def held(event_id: str, plan_: Plan | None = None, live: bool = True) -> dict[str, Published]:
    mid = meeting_id_for("c1", event_id)
    if plan_ is not None:
        meeting, digest = plan_.upserts[0]
        return {mid: Published(event_id, meeting.version, digest, live)}
    return {mid: Published(event_id, 10, "h", live)}


def test_a_one_on_one_is_published_with_allowed_fields_only() -> None:
    result = plan([raw("e1", "bob@contoso.test"), raw("e2", "cy@contoso.test")], {}, full=True)
    assert [m.graph_event_id for m, _ in result.upserts] == ["e1"]
    meeting = result.upserts[0][0]
    assert meeting.meeting_id == meeting_id_for("c1", "e1")
    assert meeting.start == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert meeting.version == int(NOW.timestamp() * 1_000_000)
    assert "MARKER" not in meeting.model_dump_json()
    assert "MARKER" not in str(result.store_items)  # bodiless
    assert set(result.store_items) == {"e1", "e2"}
    assert result.store_items["e1"]["kind"] == "one_on_one"


def test_of_a_non_one_on_one_only_what_a_roster_change_needs_is_kept() -> None:
    result = plan(
        [
            raw("two", "Cy@Contoso.test"),
            raw("three", "bob@contoso.test", "dee@contoso.test"),
            raw("private", "bob@contoso.test", sensitivity="private"),
            raw("all-day", "bob@contoso.test", isAllDay=True),
        ],
        {},
        full=True,
    )
    kept = result.store_items
    # of a private event, or one no roster can make a 1:1, nothing at all
    assert set(kept) == {"two"} and result.drop_items == {"private", "three", "all-day"}
    assert kept["two"]["kind"] == "candidate"
    text = str(kept)
    assert not any(word in text for word in ("1:1", "contoso", "2026", "Cy", "bob"))
    # The kept hash recognises the address (any case) under its own key, and no other.
    other = kept["two"]["other"]
    assert other["key_id"] == "k1"
    assert HASHER.matches(other, ["bob@contoso.test", "cy@contoso.test"]) == "cy@contoso.test"
    assert HASHER.matches(other, ["bob@contoso.test"]) is None
    rotated = AddressHasher.derived_from({"k1": b"k" * 32, "k2": b"n" * 32}, "k2")
    assert rotated.matches(other, ["cy@contoso.test"]) == "cy@contoso.test"
    assert rotated.kept("cy@contoso.test") != other
    other_key = AddressHasher.derived_from({"k1": b"x" * 32}, "k1")
    assert other_key.matches(other, ["cy@contoso.test"]) is None


def test_a_one_on_one_whose_member_leaves_keeps_only_a_hash() -> None:
    first = plan([raw("e1", "bob@contoso.test")], {}, full=True)
    gone = plan_round(
        [parse_delta_item(first.store_items["e1"]["event"])],
        held("e1", first),
        connection_id="c1",
        manager_id="ann",
        owner_addresses=["ann@contoso.test"],
        team={},
        now=NOW,
        full=True,
        hasher=HASHER,
    )
    assert [r.reason for r in gone.removals] == [RemovalReason.NO_LONGER_ONE_ON_ONE]
    assert gone.store_items["e1"]["kind"] == "candidate"
    assert HASHER.matches(gone.store_items["e1"]["other"], ["bob@contoso.test"])


def test_an_unchanged_meeting_is_not_published_again() -> None:
    first = plan([raw("e1", "bob@contoso.test")], {}, full=True)
    again = plan([raw("e1", "bob@contoso.test")], held("e1", first), full=False)
    assert again.upserts == [] and again.removals == []


def test_a_change_is_published_with_a_newer_version() -> None:
    first = plan([raw("e1", "bob@contoso.test")], {}, full=True)
    moved = plan([raw("e1", "bob@contoso.test", subject="moved")], held("e1", first), False)
    assert moved.upserts[0][0].version > first.upserts[0][0].version


def test_a_meeting_that_stops_qualifying_is_retracted() -> None:
    first = plan([raw("e1", "bob@contoso.test")], {}, full=True)
    result = plan([raw("e1", "bob@contoso.test", "cy@contoso.test")], held("e1", first), False)
    assert [r.reason for r in result.removals] == [RemovalReason.NO_LONGER_ONE_ON_ONE]
    assert result.removals[0].version > first.upserts[0][0].version


def test_a_deleted_meeting_is_retracted_and_forgotten() -> None:
    result = plan([{"id": "e1", "@removed": {"reason": "deleted"}}], held("e1"), full=False)
    assert [r.reason for r in result.removals] == [RemovalReason.DELETED]
    assert result.drop_items == {"e1"}


def test_a_deleted_one_on_one_stays_as_cancelled_and_no_full_round_forgets_it() -> None:
    first = plan([raw("e1", "bob@contoso.test")], {}, full=True)
    kept = parse_delta_item(first.store_items["e1"]["event"])
    assert not isinstance(kept, RemovedEntry)
    deleted = plan_round(
        [parse_delta_item({"id": "e1", "@removed": {"reason": "deleted"}})],
        held("e1", first),
        connection_id="c1",
        manager_id="ann",
        owner_addresses=["ann@contoso.test"],
        team=TEAM,
        now=NOW,
        full=False,
        hasher=HASHER,
        kept_one_on_ones={"e1": kept},
    )
    assert deleted.removals == [] and deleted.drop_items == set()
    [(meeting, digest)] = deleted.upserts
    assert meeting.is_cancelled and meeting.version > first.upserts[0][0].version
    assert deleted.store_items["e1"]["kind"] == "cancelled"
    mid = meeting_id_for("c1", "e1")
    later = plan([], {mid: Published("e1", meeting.version, digest, True, cancelled=True)}, True)
    assert later.removals == [] and later.drop_items == set()


def test_a_removed_non_meeting_retracts_nothing() -> None:
    assert plan([{"id": "e9", "@removed": {"reason": "deleted"}}], {}, False).removals == []


WINDOW = Window(datetime(2026, 8, 27, tzinfo=UTC), datetime(2026, 12, 26, tzinfo=UTC))


def full_round_missing(event: dict[str, Any], cancelled: bool = False) -> Plan:
    """A full round of WINDOW that does not list `event`, a live 1:1 consumers hold."""
    first = plan([event], {}, full=True)
    meeting, digest = first.upserts[0]
    mid = meeting_id_for("c1", event["id"])
    kept = parse_delta_item(first.store_items[event["id"]]["event"])
    assert not isinstance(kept, RemovedEntry)
    return plan_round(
        [],
        {mid: Published(event["id"], meeting.version, digest, True, cancelled=cancelled)},
        connection_id="c1",
        manager_id="ann",
        owner_addresses=["ann@contoso.test"],
        team=TEAM,
        now=NOW + timedelta(minutes=5),
        full=True,
        hasher=HASHER,
        window=WINDOW,
        kept_one_on_ones={event["id"]: kept},
    )


def test_a_one_on_one_that_left_the_window_stays_as_it_was_and_is_no_longer_followed() -> None:
    # "Your SMVue meeting history will still be there": a 1:1 older than the look-back is
    # history, not a removal. Consumers keep it; the syncer forgets it.
    old = raw(
        "e1",
        "bob@contoso.test",
        start={"dateTime": "2026-08-01T10:00:00.0000000", "timeZone": "UTC"},
        end={"dateTime": "2026-08-01T10:30:00.0000000", "timeZone": "UTC"},
    )
    result = full_round_missing(old)
    assert result.removals == [] and result.upserts == []
    assert result.forget == {meeting_id_for("c1", "e1")}
    assert "e1" in result.drop_items


def test_a_one_on_one_gone_from_the_window_while_unwatched_is_kept_as_cancelled() -> None:
    # Deleted in Outlook while the deltaLink had expired (or the window moved): the full
    # round doesn't list it. It is what an incremental round shows as deleted: cancelled.
    result = full_round_missing(raw("e1", "bob@contoso.test"))
    assert result.removals == []
    [(meeting, _)] = result.upserts
    assert meeting.is_cancelled and meeting.graph_event_id == "e1"
    assert result.store_items["e1"]["kind"] == "cancelled"
    assert result.forget == set()


def test_a_full_round_retracts_an_unlisted_meeting_it_kept_nothing_of() -> None:
    result = plan([], held("e1"), full=True)
    assert [r.reason for r in result.removals] == [RemovalReason.OUT_OF_WINDOW]
    assert plan([], held("e1"), full=False).removals == []
    assert plan([], held("e1", live=False), full=True).removals == []  # already retracted


def test_a_readded_meeting_outranks_its_retraction() -> None:
    tombstone = {meeting_id_for("c1", "e1"): Published("e1", 2**60, None, live=False)}
    result = plan([raw("e1", "bob@contoso.test")], tombstone, full=False)
    assert result.upserts[0][0].version == 2**60 + 1


def test_the_last_listing_of_an_event_in_a_round_wins() -> None:
    items = [raw("e1", "bob@contoso.test"), {"id": "e1", "@removed": {"reason": "deleted"}}]
    assert plan(items, {}, full=False).upserts == []
    items.reverse()
    assert len(plan(items, {}, full=False).upserts) == 1


def test_a_cancelled_occurrence_stays_published_as_cancelled() -> None:
    result = plan(
        [raw("e1", "bob@contoso.test", isCancelled=True, type="occurrence", seriesMasterId="s")],
        {},
        full=False,
    )
    meeting = result.upserts[0][0]
    assert meeting.is_cancelled and meeting.series_master_id == "s"


def test_time_zone_and_join_url_are_kept() -> None:
    extra = {
        "originalStartTimeZone": "W. Europe Standard Time",
        "onlineMeeting": {"joinUrl": "https://teams.example/join/1"},
        "start": {"dateTime": "2026-12-01T10:00:00.0000000", "timeZone": "UTC"},
        "lastModifiedDateTime": (NOW - timedelta(days=1)).isoformat(),
    }
    meeting = plan([raw("e1", "bob@contoso.test", **extra)], {}, False).upserts[0][0]
    assert meeting.original_time_zone == "W. Europe Standard Time"
    assert meeting.join_url == "https://teams.example/join/1"
