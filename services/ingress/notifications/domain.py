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

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.notifications import LifecycleEvent
from shared.contracts.subscriptions import SubscriptionInfo


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    subscription_id: str = Field(alias="subscriptionId", max_length=128)
    client_state: str | None = Field(default=None, alias="clientState", max_length=256)
    tenant_id: str | None = Field(default=None, alias="tenantId", max_length=64)
    subscription_expiration: datetime | None = Field(
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
    CLIENT_STATE_MISMATCH = "client_state_mismatch"


@dataclass(frozen=True)
class Verdict:
    subscription: SubscriptionInfo | None
    rejection: Rejection | None


def verify(item: _Item, known: SubscriptionInfo | None) -> Verdict:
    if known is None:
        return Verdict(None, Rejection.UNKNOWN_SUBSCRIPTION)
    presented = hashlib.sha256((item.client_state or "").encode()).hexdigest()
    if not hmac.compare_digest(presented, known.client_state_sha256):
        return Verdict(None, Rejection.CLIENT_STATE_MISMATCH)
    return Verdict(known, None)


def change_types(item: ChangeItem) -> list[str]:
    return [c.strip() for c in item.change_type.split(",") if c.strip()]
