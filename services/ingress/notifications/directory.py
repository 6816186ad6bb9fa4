"""The ingress's view of active subscriptions (id → connection, clientState hash), rebuilt
from the compacted subscriptions topic at start and kept current while running."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from shared.contracts.subscriptions import (
    SubscriptionActivated,
    SubscriptionEnded,
    SubscriptionInfo,
)
from shared.contracts.topics import SUBSCRIPTIONS
from shared.observability.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)


class SubscriptionDirectory:
    def __init__(self) -> None:
        self._by_id: dict[str, SubscriptionInfo] = {}

    def get(self, subscription_id: str) -> SubscriptionInfo | None:
        return self._by_id.get(subscription_id)

    def apply(self, message: SubscriptionActivated | SubscriptionEnded) -> None:
        info = message.payload
        if isinstance(message, SubscriptionActivated):
            self._by_id[info.subscription_id] = info
        else:
            self._by_id.pop(info.subscription_id, None)

    def follow(self, broker: KafkaBroker, settings: Settings) -> None:
        """Reads the whole topic from the start in every ingress instance (no group)."""
        adapter = SUBSCRIPTIONS.adapter()

        @broker.subscriber(
            settings.topic(SUBSCRIPTIONS),
            group_id=None,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            title="ingress:subscription-directory",
        )
        async def on_record(message: KafkaMessage) -> None:
            try:
                self.apply(adapter.validate_json(message.body))
            except ValidationError:
                log.warning("unreadable subscription record ignored")
