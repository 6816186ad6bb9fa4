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


async def test_a_connect_fetches_no_openid_configuration_once_the_ingress_has_one(
    world: World,
) -> None:
    """The ingress borrows its MSAL applications from a pool too: a connect's two steps
    (authorize, code redemption) each built one, and each build fetched the authority's
    OpenID configuration — two identity-platform requests per connect besides the token
    request, hundreds when many people connect at once."""
    ann, bob = world.cloud.manager, world.cloud.member
    await world.roster("ann", bob.mail, version=1)
    first = await connect_user(world.emulator, world.settings, "ann", ann.mail)
    assert first.status == "connected"
    log = world.emulator.state.request_log
    log.clear()
    for _ in range(2):  # connecting again, as a person who reconnects does
        again = await connect_user(world.emulator, world.settings, "ann", ann.mail)
        assert again.status == "connected"
    records = list(log.records)
    discovery = [r.path for r in records if r.path.endswith("/openid-configuration")]
    tokens = [r.path for r in records if r.method == "POST" and r.path.endswith("/token")]
    assert len(tokens) >= 2  # both codes were redeemed
    # Before: 2 per connect (4 here). A second application in the syncer's own pool (two
    # token fetches at once there) would be the one left.
    assert len(discovery) <= 1, discovery
