"""The syncer against an emulator set to Graph's published limits: subscription lifetime
(4230 minutes for Outlook events, a refused expiry retried once shorter), the mailbox
identity without `/me`, and immutable ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts.audit import AuditOperation, AuditOutcome, AuditRecorded
from shared.contracts.subscriptions import SubscriptionActivated
from shared.contracts.topics import AUDIT, SUBSCRIPTIONS
from tests.fixtures.kafka import TopicReader
from tests.sync.test_notifications import connected
from tests.sync.world import World

pytestmark = pytest.mark.integration


def _refusals(messages: list[object]) -> list[AuditRecorded]:
    return [
        m
        for m in messages
        if isinstance(m, AuditRecorded)
        and m.payload.operation
        in (AuditOperation.SUBSCRIPTION_CREATE, AuditOperation.SUBSCRIPTION_RENEW)
        and m.payload.outcome is AuditOutcome.REFUSED
    ]


async def test_a_refused_expiry_is_retried_once_shorter_and_kept_as_graph_answered(
    world: World,
) -> None:
    # Microsoft lowers the limit one day: the syncer's 4200 minutes are refused.
    world.emulator.state.subscriptions.settings.max_lifetime = timedelta(minutes=3000)
    await connected(world)
    (subscription,) = await world.subscriptions()
    graph_expiry = datetime.fromisoformat(subscription["expirationDateTime"].replace("Z", "+00:00"))
    assert graph_expiry <= datetime.now(UTC) + timedelta(minutes=3000)
    async with TopicReader(world.settings, AUDIT, SUBSCRIPTIONS) as reader:
        await reader.wait_for(
            lambda m: bool(_refusals(m)) and bool(reader.of(SubscriptionActivated))
        )
        (refusal,) = _refusals(reader.messages)
        assert refusal.payload.http_status == 400
        assert "4200 minutes refused" in (refusal.payload.detail or "")
        assert "retried once with 2970 minutes" in (refusal.payload.detail or "")
        (activated,) = reader.of(SubscriptionActivated)
        # What the syncer keeps (and renews on) is Graph's answer.
        assert abs((activated.payload.expires_at - graph_expiry).total_seconds()) < 1
        # A renewal asks for the shorter lifetime straight away: no second refusal.
        await world.control(
            "POST",
            f"/subscriptions/{subscription['id']}/lifecycle",
            json={"lifecycleEvent": "reauthorizationRequired"},
        )
        await reader.wait_for(
            lambda m: any(
                isinstance(x, AuditRecorded)
                and x.payload.operation is AuditOperation.SUBSCRIPTION_RENEW
                and x.payload.outcome is AuditOutcome.SUCCEEDED
                for x in m
            )
        )
        assert len(_refusals(reader.messages)) == 1
    refused = await world.control("GET", "/requests", params={"path_contains": "subscriptions"})
    assert [r["status"] for r in refused if r["status"] == 400] == [400]
