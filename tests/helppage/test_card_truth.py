"""The Integrations card tells the truth at once (issue 9 items 4 and 8): whoever learns
the connection's truth — the writer refused by Outlook, the syncer, the connect — updates
the card; a read-only grant syncs but can't schedule; a failed re-consent hints; a
revoked grant asks to reconnect; the initial import reports importing → ready."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emulators.msgraph.directory import TenantPolicy
from emulators.msgraph.faults import FaultRule
from shared.contracts.outcomes import CommandFailed
from shared.contracts.topics import COMMAND_OUTCOMES
from tests.fixtures.connect import connect_user
from tests.fixtures.kafka import TopicReader
from tests.fixtures.waiting import eventually
from tests.helppage.conftest import card, final_status, ingress
from tests.sync.world import World, event
from tests.writer.test_writer import new_id, outcome, schedule

pytestmark = pytest.mark.integration

CARD_SECONDS = 5  # "at once": well before any timed syncer round (hourly here)


async def logged_line(capfd: pytest.CaptureFixture[str], *words: str) -> str:
    """The first captured log line with all `words` (waits: a line may follow an outcome)."""
    seen = ""

    async def lines() -> list[str]:
        nonlocal seen
        captured = capfd.readouterr()
        seen += captured.out + captured.err
        return [x for x in seen.splitlines() if all(w in x for w in words)]

    return (await eventually(lines, bool, timeout=5))[0]


async def _plant(world: World) -> None:
    """A 1:1 with Bob and a three-person meeting in Ann's calendar."""
    ann, bob = world.cloud.manager, world.cloud.member
    soon = datetime.now(UTC) + timedelta(days=2)
    await world.as_user("POST", "/me/events", ann.id, json=event("1:1", soon, [bob.mail], "a"))
    three = event("Team", soon + timedelta(hours=2), [bob.mail, "carl@contoso.test"], "b")
    await world.as_user("POST", "/me/events", ann.id, json=three)


async def test_import_progress_then_a_revoked_grant_asks_to_reconnect_at_once(
    world: World, capfd: pytest.CaptureFixture[str]
) -> None:
    await world.roster("ann", world.cloud.member.mail, version=1)
    await _plant(world)
    connected_at = datetime.now(UTC)
    assert (
        await connect_user(world.emulator, world.settings, "ann", "ann.manager@contoso.test")
    ).status == "connected"
    ready = await eventually(
        lambda: card(world, "ann"),
        lambda c: (c.get("initial_import") or {}).get("state") == "ready",
        timeout=20,
    )
    progress = ready["initial_import"]
    assert (progress["events_seen"], progress["one_on_ones"]) == (2, 1)
    assert 0 <= progress["duration_seconds"] < 20
    assert datetime.fromisoformat(progress["started_at"]) >= connected_at - timedelta(seconds=1)
    assert (ready["state"], ready["syncing"], ready["can_schedule"]) == ("connected", True, True)
    assert ready["notice"] is None and ready["action"] is None

    # The grant is revoked (and the access token the services hold runs out).
    world.emulator.state.identity.revoke_refresh_tokens(world.cloud.manager.id)
    world.emulator.state.clock.advance(timedelta(hours=2))
    async with TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes:
        command_id = new_id("revoked")
        await world.publish(schedule(command_id))
        failed = await outcome(outcomes, command_id)
    assert isinstance(failed, CommandFailed)
    assert failed.payload.code == "reauthorization_required"
    # The writer's log line names the code (issue 9 item 10: it read code=[redacted]).
    line = await logged_line(capfd, "command failed", command_id)
    assert "reauthorization_required" in line and "[redacted]" not in line, line
    shown = await eventually(
        lambda: card(world, "ann"), lambda c: c.get("state") != "connected", CARD_SECONDS
    )
    assert (shown["state"], shown["syncing"], shown["can_schedule"], shown["action"]) == (
        "reauthorization_required",
        False,
        False,
        "reconnect",
    )
    assert shown["notice"]["code"] == "reauthorization_required"
    assert shown["notice"]["hint"] == "Try reconnecting your calendar"


async def test_a_read_only_grant_syncs_but_cannot_schedule(world: World) -> None:
    world.cloud.tenant.policy = TenantPolicy(
        grantable_scopes=["Calendars.Read", "openid", "profile", "offline_access", "email"]
    )
    await world.roster("ann", world.cloud.member.mail, version=1)
    await _plant(world)
    await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    shown = await eventually(
        lambda: card(world, "ann"), lambda c: c.get("state") == "connected", CARD_SECONDS
    )
    assert (shown["syncing"], shown["can_write"], shown["can_schedule"]) == (True, False, False)
    assert shown["notice"]["code"] == "insufficient_permissions"
    assert shown["notice"]["message"] == "Insufficient permissions to access Outlook Calendar"
    assert "Accept" in shown["notice"]["hint"]
    assert shown["action"] == "reconnect"
    # Syncing does work.
    await world.wait_read_model("ann", lambda docs: [d["subject"] for d in docs] == ["1:1"])


async def test_a_failed_reconsent_keeps_the_connection_and_hints(world: World) -> None:
    await world.roster("ann", world.cloud.member.mail, version=1)
    await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    declined = await connect_user(
        world.emulator, world.settings, "ann", world.cloud.manager.mail, action="cancel"
    )
    assert declined.code == "authorization_failed"

    def hinted(c: dict[str, Any]) -> bool:
        return c.get("notice") is not None

    shown = await eventually(lambda: card(world, "ann"), hinted, CARD_SECONDS)
    assert (shown["state"], shown["syncing"], shown["can_schedule"]) == ("connected", True, True)
    assert shown["notice"]["code"] == "authorization_failed"
    assert shown["notice"]["hint"].startswith("Your last attempt to reconnect failed")
    # A sync round afterwards does not wipe the hint.
    sync_id = f"sync-{uuid.uuid4().hex[:10]}"
    async with ingress(world) as api:
        await api.post("/v1/commands/sync-now", json={"command_id": sync_id, "user_id": "ann"})
    assert (await final_status(world, sync_id))["state"] == "succeeded"
    after = await eventually(
        lambda: card(world, "ann"), lambda c: c["last_sync_at"] != shown["last_sync_at"]
    )
    assert after["notice"]["code"] == "authorization_failed"
    # A successful reconnect clears it.
    await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    cleared = await eventually(lambda: card(world, "ann"), lambda c: c.get("notice") is None)
    assert cleared["last_connect_error"] is None


async def test_outlook_refusing_a_write_shows_on_the_card_at_once(world: World) -> None:
    await world.roster("ann", world.cloud.member.mail, version=1)
    await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    await eventually(lambda: card(world, "ann"), lambda c: c.get("can_schedule") is True)
    world.emulator.state.faults.add(
        FaultRule(path_regex=r"/me/events$", method="POST", status=403, code="ErrorAccessDenied")
    )
    async with TopicReader(world.settings, COMMAND_OUTCOMES) as outcomes:
        command_id = new_id("refused")
        await world.publish(schedule(command_id))
        failed = await outcome(outcomes, command_id)
    assert isinstance(failed, CommandFailed)
    assert failed.payload.code == "insufficient_permissions"
    shown = await eventually(
        lambda: card(world, "ann"), lambda c: c.get("can_schedule") is False, CARD_SECONDS
    )
    assert (shown["state"], shown["syncing"]) == ("connected", True)
    assert shown["notice"]["code"] == "insufficient_permissions"
