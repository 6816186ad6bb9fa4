"""The writer against the emulator, real Kafka and MongoDB: 1:1s scheduled, rescheduled and
cancelled in SMVue land on the manager's Outlook calendar exactly once, events SMVue did not
create are never touched, and each failure ends with the help page's words."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from emulators.msgraph.calendar.model import StoredEvent
from emulators.msgraph.directory import TenantPolicy
from emulators.msgraph.faults import FaultRule
from services.writer.domain.outlook_event import SMVUE_TAG_ID
from shared.contracts.audit import AuditOperation, AuditOutcome, AuditRecorded
from shared.contracts.commands import (
    CancelMeeting,
    CancelMeetingRequest,
    RescheduleMeeting,
    RescheduleMeetingRequest,
    ScheduleMeeting,
    ScheduleMeetingRequest,
)
from shared.contracts.connections import connection_id_for
from shared.contracts.outcomes import CommandFailed, CommandSucceeded
from shared.contracts.topics import AUDIT, COMMAND_OUTCOMES, MEETINGS
from tests.fixtures.connect import connect_user
from tests.fixtures.kafka import TopicReader
from tests.fixtures.services import build, running, settings_env, wait_listening
from tests.sync.world import World, event, subjects

pytestmark = pytest.mark.integration

PARIS = "Europe/Paris"
CID = connection_id_for("ann")


def tomorrow_at(hour: int, days: int = 1) -> datetime:
    """A wall-clock time in Paris, `days` ahead (naive: the command carries the zone)."""
    day = datetime.now(ZoneInfo(PARIS)).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour)


def schedule(command_id: str, **overrides: Any) -> ScheduleMeeting:
    values: dict[str, Any] = {
        "command_id": command_id,
        "manager_id": "ann",
        "member_name": "Bob Member",
        "member_email": "bob.member@contoso.test",
        "start": tomorrow_at(10),
        "time_zone": PARIS,
        "meeting_type": "30min",
        "prep_url": f"https://app.smvue.test/prep/{command_id}",
    }
    values.update(overrides)
    return ScheduleMeeting.build(key=CID, payload=ScheduleMeetingRequest.model_validate(values))


def reschedule(command_id: str, meeting_id: str, **overrides: Any) -> RescheduleMeeting:
    payload = RescheduleMeetingRequest.model_validate(
        {"command_id": command_id, "manager_id": "ann", "meeting_id": meeting_id, **overrides}
    )
    return RescheduleMeeting.build(key=CID, payload=payload)


def cancel(command_id: str, meeting_id: str, message: str | None = None) -> CancelMeeting:
    payload = CancelMeetingRequest(
        command_id=command_id, manager_id="ann", meeting_id=meeting_id, message=message
    )
    return CancelMeeting.build(key=CID, payload=payload)


def new_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


async def outcome(reader: TopicReader, command_id: str) -> CommandSucceeded | CommandFailed:
    def done(messages: list[Any]) -> bool:
        return any(m.payload.command_id == command_id for m in messages)

    await reader.wait_for(done, timeout=45)
    found = [m for m in reader.messages if m.payload.command_id == command_id]
    assert len({type(m) for m in found}) == 1, found
    result: CommandSucceeded | CommandFailed = found[0]
    return result


def organised_by_ann(world: World) -> list[StoredEvent]:
    events = world.emulator.state.calendars.events_of(world.cloud.manager.id)
    return [e for e in events if e.is_organizer]


def writes_to(world: World, event_id: str) -> list[str]:
    """Every write the emulator saw on one event (the request log, faults included)."""
    records = world.emulator.state.request_log.query(path_contains=event_id)
    return [f"{r.method} {r.path}" for r in records if r.method in ("POST", "PATCH", "DELETE")]


async def eventually_logged(world: World, path: str, method: str, timeout: float = 30) -> None:
    """Waits until the emulator has answered a request to exactly `path`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        records = world.emulator.state.request_log.query(path_contains=path)
        if any(r.method == method and r.path.endswith(path) for r in records):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {method} {path} within {timeout}s")


async def connected(world: World) -> None:
    await world.roster("ann", world.cloud.member.mail, version=1)
    result = await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    assert result.status == "connected"


async def test_schedule_reschedule_and_cancel_reach_outlook_and_the_read_model(
    world: World,
) -> None:
    await connected(world)
    bob = world.cloud.member
    async with (
        running(build("writer", world.settings)),
        TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes,
    ):
        plain, teams = new_id("plain"), new_id("teams")
        await world.publish(schedule(plain))
        await world.publish(
            schedule(teams, start=tomorrow_at(14), meeting_type="60min", add_teams_link=True)
        )
        first = await outcome(outcomes, plain)
        second = await outcome(outcomes, teams)
        assert isinstance(first, CommandSucceeded) and isinstance(second, CommandSucceeded)
        assert first.payload.join_url is None
        assert second.payload.join_url and second.payload.join_url.startswith(
            "https://teams.microsoft.com/"
        )

        events = {e.id: e for e in organised_by_ann(world)}
        assert set(events) == {first.payload.graph_event_id, second.payload.graph_event_id}
        made = events[str(first.payload.graph_event_id)]
        assert made.data["subject"] == "1:1 with Bob Member"
        assert made.end - made.start == timedelta(minutes=30)
        assert made.start == tomorrow_at(10).replace(tzinfo=ZoneInfo(PARIS)).astimezone(UTC)
        assert [a["emailAddress"]["address"] for a in made.data["attendees"]] == [bob.mail]
        assert f"https://app.smvue.test/prep/{plain}" in made.data["body"]["content"]
        assert made.data["singleValueExtendedProperties"] == [{"id": SMVUE_TAG_ID, "value": plain}]
        assert "onlineMeeting" not in made.data
        with_teams = events[str(second.payload.graph_event_id)]
        assert with_teams.end - with_teams.start == timedelta(minutes=60)
        assert with_teams.data["onlineMeeting"]["joinUrl"] == second.payload.join_url
        invited = [(i["kind"], i["to"]) for i in world.emulator.state.calendars.invitations]
        assert invited == [("request", bob.mail), ("request", bob.mail)]

        # One meeting each in the read model, marked as created in SMVue, even once the
        # syncer has seen them in Outlook too (it merges by Graph id). Whose record is shown
        # is the higher version's, which either producer may hold: waited for is that the
        # syncer's records are on the topic (its key is the meeting id) and applied.
        mine = {str(first.payload.meeting_id), str(second.payload.meeting_id)}
        async with TopicReader(world.settings, MEETINGS) as meetings:
            await meetings.wait_for(lambda m: mine <= {x.key for x in m if x.key in mine})
        docs = await world.wait_read_model(
            "ann",
            lambda d: (
                len(d) == 2
                and all(x["created_in_smvue"] for x in d)
                and all(x["version"] >= syncer_versions(meetings.messages, x["_id"]) for x in d)
            ),
        )
        assert {d["_id"] for d in docs} == {
            first.payload.meeting_id,
            second.payload.meeting_id,
        }
        assert {d["smvue_command_id"] for d in docs} == {plain, teams}

        # Reschedule the first to the day after at 16:00, as 60 minutes.
        moved = new_id("move")
        await world.publish(
            reschedule(
                moved,
                str(first.payload.meeting_id),
                new_start=tomorrow_at(16, days=2),
                meeting_type="60min",
            )
        )
        assert isinstance(await outcome(outcomes, moved), CommandSucceeded)
        made = next(e for e in organised_by_ann(world) if e.id == first.payload.graph_event_id)
        new_start = tomorrow_at(16, days=2).replace(tzinfo=ZoneInfo(PARIS)).astimezone(UTC)
        assert (made.start, made.end - made.start) == (new_start, timedelta(minutes=60))
        await world.wait_read_model(
            "ann", lambda d: new_start in [x["start"].astimezone(UTC) for x in d]
        )

        # Cancel the Teams one: attendees are told with the message; it leaves the calendar,
        # and the read model keeps it, flagged cancelled (cadence history).
        dropped = new_id("cancel")
        await world.publish(cancel(dropped, str(second.payload.meeting_id), "Out sick"))
        assert isinstance(await outcome(outcomes, dropped), CommandSucceeded)
        assert [e.id for e in organised_by_ann(world)] == [first.payload.graph_event_id]
        last = world.emulator.state.calendars.invitations[-1]
        assert (last["kind"], last["to"], last["comment"]) == ("cancel", bob.mail, "Out sick")
        docs = await world.wait_read_model(
            "ann",
            lambda d: [x["_id"] for x in d if not x["is_cancelled"]] == [first.payload.meeting_id],
        )
        assert [x["_id"] for x in docs if x["is_cancelled"]] == [second.payload.meeting_id]

    # Every write is in the audit log, with Graph's request id and no body or token.
    async with TopicReader(world.settings, AUDIT) as audit:
        entries = await audit.wait_for(
            lambda m: sum(1 for x in m if x.payload.service == "writer") >= 4
        )
    writer = [
        e.payload for e in entries if isinstance(e, AuditRecorded) and e.payload.service == "writer"
    ]
    assert sorted((e.operation, e.command_id) for e in writer) == sorted(
        [
            (AuditOperation.EVENT_CREATE, plain),
            (AuditOperation.EVENT_CREATE, teams),
            (AuditOperation.EVENT_UPDATE, moved),
            (AuditOperation.EVENT_CANCEL, dropped),
        ]
    )
    assert all(e.outcome is AuditOutcome.SUCCEEDED and e.graph_request_id for e in writer)
    assert all(e.connection_id == CID and e.user_id == "ann" for e in writer)
    assert not any("app.smvue.test/prep" in r.decode() for r in audit.raw)
    # The prep link is the only body the writer ever writes; it never reads one back out.
    async with TopicReader(world.settings, MEETINGS) as meetings:
        await meetings.wait_for(lambda m: len(m) >= 3)
    assert not any(b"prep/" in r for r in meetings.raw)


def syncer_versions(messages: list[Any], meeting_id: str) -> int:
    """The highest version the syncer published for the meeting (its key: the meeting id)."""
    return int(max(m.payload.version for m in messages if m.key == meeting_id))


async def test_the_same_command_twice_makes_one_event(world: World) -> None:
    await connected(world)
    command_id = new_id("twice")
    async with (
        running(build("writer", world.settings)),
        TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes,
    ):
        await world.publish(schedule(command_id))
        await world.publish(schedule(command_id))  # redelivered / re-sent by the backend
        done = await outcome(outcomes, command_id)
        assert isinstance(done, CommandSucceeded)
        # The second copy is recognised as finished: no second create is even tried.
        await world.publish(schedule(command_id))
        marker = new_id("after")
        await world.publish(schedule(marker, start=tomorrow_at(15)))
        await outcome(outcomes, marker)
    creates = [
        r
        for r in world.emulator.state.request_log.query(path_contains="/me/events")
        if r.method == "POST"
    ]
    assert len(creates) == 2  # the command once, the marker once
    assert sorted(e.data["subject"] for e in organised_by_ann(world)) == ["1:1 with Bob Member"] * 2


async def test_reschedule_and_cancel_refuse_events_smvue_did_not_create(world: World) -> None:
    await connected(world)
    ann = world.cloud.manager
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    own = await world.as_user(
        "POST",
        "/me/events",
        ann.id,
        json=event("ann's own 1:1", start, [world.cloud.member.mail], "m"),
    )
    docs = await world.wait_read_model("ann", lambda d: subjects(d) == ["ann's own 1:1"])
    theirs = docs[0]["_id"]
    async with (
        running(build("writer", world.settings)),
        TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes,
    ):
        attempts = [
            reschedule(new_id("r"), theirs, new_start=tomorrow_at(9)),
            cancel(new_id("c"), theirs, "bye"),
            cancel(new_id("c"), "mtg_unknown"),
        ]
        for command in attempts:
            await world.publish(command)
        for command in attempts:
            failed = await outcome(outcomes, command.payload.command_id)
            assert isinstance(failed, CommandFailed)
            assert failed.payload.code == "not_managed_by_smvue"
            assert failed.payload.message == (
                "SMVue only updates or cancels the events it created on your Outlook Calendar"
            )
    assert writes_to(world, own["id"]) == []
    assert [e.data["subject"] for e in organised_by_ann(world)] == ["ann's own 1:1"]
    async with TopicReader(world.settings, AUDIT) as audit:
        await audit.wait_for(
            lambda m: sum(1 for x in m if x.payload.operation is AuditOperation.WRITE_REFUSED) >= 3
        )


async def test_each_failure_ends_with_its_code_and_the_help_pages_words(world: World) -> None:
    """Not connected, no Teams licence (refused up front, and Graph's quiet downgrade),
    throttled past patience, deleted in Outlook meanwhile, and a conflict resolved."""
    await world.roster("ann", world.cloud.member.mail, version=1)
    faults = world.emulator.state.faults
    async with (
        running(build("writer", world.settings)),
        TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes,
    ):
        # Not connected yet.
        lonely = new_id("lonely")
        await world.publish(schedule(lonely))
        failed = await outcome(outcomes, lonely)
        assert isinstance(failed, CommandFailed)
        assert (failed.payload.code, failed.payload.message) == (
            "calendar_not_connected",
            "Outlook Calendar is not connected",
        )

        result = await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
        assert result.status == "connected"

        # No Teams licence: the meeting is made without the link, and the outcome says so
        # (tests/helppage/test_teams_warning.py has the whole story).
        world.cloud.manager.teams_licence = False
        no_teams = new_id("noteams")
        await world.publish(schedule(no_teams, add_teams_link=True))
        made = await outcome(outcomes, no_teams)
        assert isinstance(made, CommandSucceeded)
        assert [w.code for w in made.payload.warnings] == ["teams_link_unavailable"]
        assert "license includes Teams" in made.payload.warnings[0].message
        [first] = organised_by_ann(world)
        assert "onlineMeeting" not in first.data
        # Graph said Teams was fine, then quietly made the event without it (the licence went
        # between the check and the create): the event stays, invitations being out, and the
        # person is told the link could not be added.
        world.cloud.manager.teams_licence = True
        world.emulator.state.calendars.unlicensed_teams = "silent"
        faults.add(
            FaultRule(path_regex=r"/me/events$", method="POST", status=None, latency_ms=2000)
        )
        quiet = new_id("quiet")
        world.emulator.state.request_log.clear()
        await world.publish(schedule(quiet, add_teams_link=True))
        await eventually_logged(world, "/me/calendar", "GET")
        world.cloud.manager.teams_licence = False
        quietly = await outcome(outcomes, quiet)
        assert isinstance(quietly, CommandSucceeded)
        assert [w.code for w in quietly.payload.warnings] == ["teams_link_unavailable"]
        assert quietly.payload.meeting_id is not None and quietly.payload.join_url is None
        [kept] = [e for e in organised_by_ann(world) if e.id == quietly.payload.graph_event_id]
        assert not kept.data.get("isOnlineMeeting") and "onlineMeeting" not in kept.data
        await world.wait_read_model(
            "ann", lambda d: quietly.payload.meeting_id in [x["_id"] for x in d]
        )
        world.cloud.manager.teams_licence = True
        faults.clear()

        # A short 429 is waited out (Retry-After honoured), then the create goes through.
        faults.add(FaultRule(path_regex=r"/me/events$", method="POST", status=429, retry_after=1))
        patient = new_id("patient")
        await world.publish(schedule(patient))
        made = await outcome(outcomes, patient)
        assert isinstance(made, CommandSucceeded)
        posts = [
            r
            for r in world.emulator.state.request_log.query(path_contains="/me/events")
            if r.method == "POST"
        ]
        assert [r.status for r in posts[-2:]] == [429, 201]
        assert (posts[-1].at - posts[-2].at).total_seconds() >= 0.9

        # A conflict (412 on If-Match) is re-read and re-applied.
        faults.add(FaultRule(path_regex=r"/me/events/", method="PATCH", status=412))
        moved = new_id("moved")
        await world.publish(
            reschedule(moved, str(made.payload.meeting_id), new_start=tomorrow_at(11))
        )
        assert isinstance(await outcome(outcomes, moved), CommandSucceeded)
        patches = [
            r.status
            for r in world.emulator.state.request_log.query(
                path_contains=str(made.payload.graph_event_id)
            )
            if r.method == "PATCH"
        ]
        assert patches == [412, 200]

        # Deleted in Outlook meanwhile: a clear outcome, no retry loop.
        await world.as_user(
            "DELETE", f"/me/events/{made.payload.graph_event_id}", world.cloud.manager.id
        )
        late = new_id("late")
        await world.publish(cancel(late, str(made.payload.meeting_id)))
        failed = await outcome(outcomes, late)
        assert isinstance(failed, CommandFailed) and failed.payload.code == "event_not_found"
        assert failed.payload.message == "The meeting no longer exists on your Outlook Calendar"
        [owned] = await world.mongo_docs("writer_ownership", {"_id": made.payload.meeting_id})
        assert owned["state"] == "gone"  # later commands on it end without asking Graph

        # Throttled for longer than the writer waits: given up, with the words for it; and
        # the mailbox then backs off, so the next command fails fast instead of queueing.
        long_throttle = faults.add(
            FaultRule(
                path_regex=r"/me/events$", method="POST", status=429, retry_after=600, count=None
            )
        )
        busy = new_id("busy")
        await world.publish(schedule(busy))
        failed = await outcome(outcomes, busy)
        assert isinstance(failed, CommandFailed) and failed.payload.code == "throttled"

        after = new_id("after")
        await world.publish(schedule(after))
        failed = await outcome(outcomes, after)
        assert isinstance(failed, CommandFailed) and failed.payload.code == "throttled"
        throttled_by = [
            r.fault_id
            for r in world.emulator.state.request_log.query(path_contains="/me/events")
            if r.method == "POST" and r.status == 429
        ]
        assert throttled_by.count(long_throttle.id) == 1  # `after` never reached Graph


async def test_a_read_only_grant_is_refused_before_any_write(world: World) -> None:

    world.cloud.tenant.policy = TenantPolicy(
        grantable_scopes=["Calendars.Read", "openid", "profile", "offline_access", "email"]
    )
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    await world.as_user(
        "POST",
        "/me/events",
        world.cloud.manager.id,
        json=event("weekly", start, [world.cloud.member.mail], "m"),
    )
    await connected(world)
    # Reading still works: tokens refresh with the scopes granted, not the ones asked for.
    await world.wait_read_model("ann", lambda d: subjects(d) == ["weekly"])
    await world.sync_now("ann")
    async with (
        running(build("writer", world.settings)),
        TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes,
    ):
        command_id = new_id("readonly")
        await world.publish(schedule(command_id))
        failed = await outcome(outcomes, command_id)
    assert isinstance(failed, CommandFailed)
    assert (failed.payload.code, failed.payload.message) == (
        "insufficient_permissions",
        "Insufficient permissions to access Outlook Calendar",
    )
    posts = world.emulator.state.request_log.query(path_contains="/me/events")
    assert [r for r in posts if r.method == "POST" and r.client_id == world.cloud.client_id] == []
    [registry] = await world.mongo_docs("connection_registry")
    assert (registry["state"], registry["can_write"]) == ("connected", False)


async def test_a_writer_killed_right_after_the_graph_create_still_makes_one_event(
    world: World,
) -> None:
    """The create reaches Outlook, the writer dies before hearing the answer (so nothing is
    recorded and the offset is not committed); the next writer replays the command with the
    same transactionId and Graph hands back the event already made."""
    await connected(world)
    held = world.emulator.state.faults.add(
        FaultRule(path_regex=r"/me/events$", method="POST", status=None, answer_delay_ms=120_000)
    )
    command_id = new_id("crash")
    env = {**os.environ, **settings_env(world.settings), "SMVUE_LOG_FORMAT": "console"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from shared.cli import main; main()",
        "run",
        "writer",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_listening("127.0.0.1", world.settings.writer_port, alive(process), 60)
        await world.publish(schedule(command_id))
        await wait_until(lambda: len(organised_by_ann(world)) == 1)
        assert held.hits == 1
    finally:
        process.kill()  # SIGKILL: no graceful anything
        await process.wait()

    async with (
        running(build("writer", world.settings)),
        TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes,
    ):
        done = await outcome(outcomes, command_id)
    assert isinstance(done, CommandSucceeded)
    [made] = organised_by_ann(world)
    assert done.payload.graph_event_id == made.id
    posts = [
        r
        for r in world.emulator.state.request_log.query(path_contains="/me/events")
        if r.method == "POST" and r.client_id == world.cloud.client_id
    ]
    # The held create (still unanswered) plus the replay, which Graph deduped.
    assert held.hits == 1 and [(p.fault_id, p.status) for p in posts] == [(None, 201)]
    docs = await world.wait_read_model("ann", lambda d: len(d) == 1 and d[0]["created_in_smvue"])
    assert docs[0]["_id"] == done.payload.meeting_id


async def wait_until(check: Callable[[], bool], timeout: float = 45) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def alive(process: asyncio.subprocess.Process) -> Callable[[], None]:
    def check() -> None:
        assert process.returncode is None, "the writer process exited during start-up"

    return check
