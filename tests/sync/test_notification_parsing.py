"""Parsing Graph's notification collections and checking clientState (pure)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.ingress.notifications.domain import (
    ChangeBatch,
    LifecycleBatch,
    Rejection,
    change_notices,
    lifecycle_notice,
    verify,
)
from shared.contracts.notifications import LifecycleEvent
from shared.contracts.subscriptions import SubscriptionInfo

SECRET = "s3cret-client-state"
KNOWN = SubscriptionInfo(
    subscription_id="sub-1",
    connection_id="c1",
    resource="me/events",
    expires_at=datetime(2026, 12, 1, tzinfo=UTC),
    client_state_sha256=hashlib.sha256(SECRET.encode()).hexdigest(),
)
NOW = datetime(2026, 11, 25, tzinfo=UTC)


def change(**overrides: object) -> dict[str, object]:
    return {
        "subscriptionId": "sub-1",
        "subscriptionExpirationDateTime": "2026-12-01T00:00:00Z",
        "changeType": "updated",
        "resource": "Users/u1/Events/e1",
        "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "id": "e1", "x": 1},
        "clientState": SECRET,
        "tenantId": "t1",
        "somethingNew": {"ignored": True},
        **overrides,
    }


def test_a_change_batch_keeps_only_ids_and_drops_the_client_state() -> None:
    batch = ChangeBatch.model_validate({"value": [change()]})
    item = batch.value[0]
    assert verify(item, KNOWN).subscription == KNOWN
    notices = change_notices(item, KNOWN, NOW)
    assert [(n.change_type, n.resource_id, n.connection_id) for n in notices] == [
        ("updated", "e1", "c1")
    ]
    assert SECRET not in notices[0].model_dump_json()


def test_joined_change_types_become_one_notice_each_and_unknown_ones_are_ignored() -> None:
    item = ChangeBatch.model_validate({"value": [change(changeType="created,updated,bogus")]})
    assert [n.change_type for n in change_notices(item.value[0], KNOWN, NOW)] == [
        "created",
        "updated",
    ]


@pytest.mark.parametrize(
    ("client_state", "known", "rejection"),
    [
        ("wrong", KNOWN, Rejection.CLIENT_STATE_MISMATCH),
        (None, KNOWN, Rejection.CLIENT_STATE_MISMATCH),
        (SECRET, None, Rejection.UNKNOWN_SUBSCRIPTION),
    ],
)
def test_wrong_or_unknown_is_rejected(
    client_state: str | None, known: SubscriptionInfo | None, rejection: Rejection
) -> None:
    item = ChangeBatch.model_validate({"value": [change(clientState=client_state)]}).value[0]
    verdict = verify(item, known)
    assert verdict.subscription is None and verdict.rejection is rejection


def test_a_lifecycle_batch() -> None:
    body = {"value": [{**change(), "lifecycleEvent": "missed"}]}
    item = LifecycleBatch.model_validate(body).value[0]
    notice = lifecycle_notice(item, KNOWN, NOW)
    assert notice.lifecycle_event is LifecycleEvent.MISSED
    assert notice.subscription_expires_at == datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"value": "nope"},
        {"value": [{"changeType": "updated"}]},
        {"value": [{**change(), "subscriptionExpirationDateTime": "2026-12-01T00:00:00"}]},
    ],
)
def test_malformed_collections_are_refused(body: object) -> None:
    with pytest.raises(ValidationError):
        ChangeBatch.model_validate(body)


def test_an_unknown_lifecycle_event_is_refused() -> None:
    with pytest.raises(ValidationError):
        LifecycleBatch.model_validate({"value": [{**change(), "lifecycleEvent": "other"}]})
