"""While an access token is valid, a Graph call costs no request to the identity platform:
the MSAL application is built once per process, not per token fetch (each build fetched
the authority's OpenID configuration). Counted in the emulator's request log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.connect import connect_user
from tests.sync.world import Doc, World, event, subjects

pytestmark = pytest.mark.integration


async def test_graph_calls_cost_no_identity_requests_while_the_token_is_valid(
    world: World,
) -> None:
    ann, bob = world.cloud.manager, world.cloud.member
    await world.roster("ann", bob.mail, version=1)
    outcome = await connect_user(world.emulator, world.settings, "ann", ann.mail)
    assert outcome.status == "connected"
    log = world.emulator.state.request_log
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    await world.as_user("POST", "/me/events", ann.id, json=event("first", soon, [bob.mail], "m"))
    await world.wait_read_model("ann", lambda d: "first" in subjects(d))

    log.clear()
    for n in range(3):
        body = event(f"change {n}", soon + timedelta(hours=n + 1), [bob.mail], "m")
        await world.as_user("POST", "/me/events", ann.id, json=body)
        await world.wait_read_model("ann", _has(f"change {n}"))

    records = list(log.records)
    deltas = [r for r in records if "calendarView/delta" in r.path or "delta" in r.query]
    identity = [r for r in records if not r.path.startswith("/v1.0/")]
    assert len(deltas) >= 3  # the syncer's rounds did call Graph
    assert identity == [], [(r.method, r.path) for r in identity]


def _has(subject: str) -> Callable[[list[Doc]], bool]:
    return lambda docs: subject in subjects(docs)
