"""Which refusals of a subscription's expiry are retried shorter, and with what."""

from __future__ import annotations

from services.syncer.domain.lifetime import shorter_lifetime
from services.syncer.settings import SyncerSettings

GRAPH_MESSAGE = "Subscription expiration can only be 4230 minutes in the future."


def test_the_default_lifetime_is_within_the_published_table() -> None:
    assert SyncerSettings().subscription_minutes <= 4230


def test_graphs_own_message_names_the_limit_to_retry_with() -> None:
    assert shorter_lifetime(400, GRAPH_MESSAGE, 10_070) == 4200
    wrapped = f"Operation: Create; Exception: [Status Code: BadRequest; Reason: {GRAPH_MESSAGE}]"
    assert shorter_lifetime(400, wrapped, 10_070) == 4200


def test_without_a_named_limit_the_published_one_or_half() -> None:
    assert shorter_lifetime(400, "Invalid expiration time.", 10_070) == 4200
    assert shorter_lifetime(400, "Invalid expiration time.", 4000) == 2000


def test_other_refusals_are_not_retried() -> None:
    assert (
        shorter_lifetime(400, "Subscription expiration date cannot be in the past.", 4200) is None
    )
    assert shorter_lifetime(400, "clientState too long", 4200) is None
    assert shorter_lifetime(403, GRAPH_MESSAGE, 10_070) is None
    assert shorter_lifetime(400, "expiration can only be 60 minutes", 4200) is None  # < 45 min
