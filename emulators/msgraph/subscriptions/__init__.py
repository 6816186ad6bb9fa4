"""Graph change notifications: /v1.0/subscriptions, validation handshake, webhook delivery."""

from emulators.msgraph.subscriptions.service import SubscriptionService

__all__ = ["SubscriptionService"]
