"""Parsing Graph's notification batches and checking each item's clientState (pure).

Only the fields the syncer needs survive the parse; the clientState is compared (as a
SHA-256, in constant time) and then dropped — it is never published or logged.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.notifications import ChangeNotice, LifecycleEvent, LifecycleNotice
from shared.contracts.subscriptions import SubscriptionInfo

CHANGE_TYPES = ("created", "updated", "deleted")


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    subscription_id: str = Field(alias="subscriptionId", max_length=128)
    client_state: str | None = Field(default=None, alias="clientState", max_length=256)
    tenant_id: str | None = Field(default=None, alias="tenantId", max_length=64)
    subscription_expiration: AwareDatetime | None = Field(
        default=None, alias="subscriptionExpirationDateTime"
    )


class ResourceData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(default=None, max_length=512)


class ChangeItem(_Item):
    change_type: str = Field(alias="changeType", max_length=100)
    resource: str | None = Field(default=None, max_length=1000)
    resource_data: ResourceData | None = Field(default=None, alias="resourceData")


class LifecycleItem(_Item):
    lifecycle_event: LifecycleEvent = Field(alias="lifecycleEvent")


class ChangeBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: list[ChangeItem] = Field(max_length=1000)


class LifecycleBatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    value: list[LifecycleItem] = Field(max_length=1000)


class Rejection(StrEnum):
    UNKNOWN_SUBSCRIPTION = "unknown_subscription"
    ENDED_SUBSCRIPTION = "ended_subscription"
    CLIENT_STATE_MISMATCH = "client_state_mismatch"


@dataclass(frozen=True)
class Verdict:
    subscription: SubscriptionInfo | None
    rejection: Rejection | None


def verify(item: _Item, known: SubscriptionInfo | None) -> Verdict:
    """Constant-time comparison of the presented clientState's SHA-256 with the published
    hash (the syncer never publishes the secret itself)."""
    if known is None:
        return Verdict(None, Rejection.UNKNOWN_SUBSCRIPTION)
    presented = hashlib.sha256((item.client_state or "").encode()).hexdigest()
    if not hmac.compare_digest(presented, known.client_state_sha256):
        return Verdict(None, Rejection.CLIENT_STATE_MISMATCH)
    return Verdict(known, None)


def change_types(item: ChangeItem) -> list[str]:
    """Graph may join several change types with commas; unknown ones are ignored."""
    found = [c.strip() for c in item.change_type.split(",")]
    return [c for c in CHANGE_TYPES if c in found]


def change_notices(item: ChangeItem, known: SubscriptionInfo, now: datetime) -> list[ChangeNotice]:
    """What the syncer gets for an accepted item: ids only, never the clientState."""
    return [
        ChangeNotice(
            connection_id=known.connection_id,
            subscription_id=item.subscription_id,
            change_type=change_type,
            resource_id=item.resource_data.id if item.resource_data else None,
            tenant_id=item.tenant_id,
            received_at=now,
        )
        for change_type in change_types(item)
    ]


def lifecycle_notice(
    item: LifecycleItem, known: SubscriptionInfo, now: datetime
) -> LifecycleNotice:
    return LifecycleNotice(
        connection_id=known.connection_id,
        subscription_id=item.subscription_id,
        lifecycle_event=item.lifecycle_event,
        subscription_expires_at=item.subscription_expiration,
        received_at=now,
    )
