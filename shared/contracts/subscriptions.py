"""Graph change-notification subscriptions, as the ingress needs to know them.

The syncer owns subscriptions; the ingress checks each notification's clientState. The
secret itself is never published: only its SHA-256, which the ingress compares in
constant time against the hash of what Graph sends.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from shared.contracts.envelope import Contract, Envelope


class SubscriptionInfo(Contract):
    subscription_id: str = Field(max_length=128)
    connection_id: str
    resource: str = Field(max_length=200)
    expires_at: AwareDatetime
    client_state_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class SubscriptionActivated(Envelope):
    type: Literal["subscription.activated"] = "subscription.activated"
    payload: SubscriptionInfo


class SubscriptionEnded(Envelope):
    type: Literal["subscription.ended"] = "subscription.ended"
    payload: SubscriptionInfo
