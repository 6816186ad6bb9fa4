"""Graph change and lifecycle notifications, accepted by the ingress for the syncer.

Only what the syncer needs to decide "run a delta round for this mailbox" is kept: never
the clientState (a secret) and never resource data beyond ids.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from shared.contracts.envelope import Contract, Envelope


class LifecycleEvent(StrEnum):
    REAUTHORIZATION_REQUIRED = "reauthorizationRequired"
    SUBSCRIPTION_REMOVED = "subscriptionRemoved"
    MISSED = "missed"


class ChangeNotice(Contract):
    connection_id: str
    subscription_id: str = Field(max_length=128)
    change_type: Literal["created", "updated", "deleted"]
    resource_id: str | None = Field(default=None, max_length=512, description="The event id.")
    tenant_id: str | None = Field(default=None, max_length=64)
    received_at: AwareDatetime


class LifecycleNotice(Contract):
    connection_id: str
    subscription_id: str = Field(max_length=128)
    lifecycle_event: LifecycleEvent
    subscription_expires_at: AwareDatetime | None = None
    received_at: AwareDatetime


class GraphChangeNotified(Envelope):
    type: Literal["graph.change_notified"] = "graph.change_notified"
    payload: ChangeNotice


class GraphLifecycleNotified(Envelope):
    type: Literal["graph.lifecycle_notified"] = "graph.lifecycle_notified"
    payload: LifecycleNotice
