"""The ingress's view of active subscriptions (id → connection, clientState hash), read in
full from the compacted subscriptions topic by every ingress instance (no consumer group):
rebuilt from the start at boot, kept current while running.

One subscription per connection (the topic's key): a newer activation for a connection
replaces its older subscription, so the live view equals what compaction keeps. Until the
directory has read up to the end offsets it saw at start it is not `ready`, and the
webhook answers 503 rather than rejecting notifications it simply hasn't learnt about yet.

The follower is supervised (`run`): if it fails it is restarted after a pause and the
directory is not `ready` (readiness false, the webhook answers 503) until it has caught up
again. Subscriptions this instance saw end (or be replaced) are remembered, boundedly, so
their late notifications are dropped rather than answered 503 for Graph to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer, TopicPartition
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
MAX_ENDED = 10_000  # ended subscription ids remembered (oldest forgotten first)


class SubscriptionDirectory:
    def __init__(self) -> None:
        self._by_id: dict[str, SubscriptionInfo] = {}
        self._by_connection: dict[str, str] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._following = False
        self.restarts = 0

    @property
    def ready(self) -> bool:
        """Caught up with the topic and still following it."""
        return self._following and self._ready.is_set()

    def ended(self, subscription_id: str) -> bool:
        """Did this instance see the subscription end or be replaced?"""
        return subscription_id in self._ended

    def _remember_ended(self, subscription_id: str) -> None:
        self._ended[subscription_id] = None
        self._ended.move_to_end(subscription_id)
        while len(self._ended) > MAX_ENDED:
            self._ended.popitem(last=False)

    def get(self, subscription_id: str) -> SubscriptionInfo | None:
        return self._by_id.get(subscription_id)

    async def lookup(self, subscription_id: str, grace: float) -> SubscriptionInfo | None:
        """The subscription, waiting up to `grace` seconds for one the syncer has only just
        published (Graph may notify before this instance read the activation)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while (found := self._by_id.get(subscription_id)) is None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        return found

    def apply(self, message: SubscriptionActivated | SubscriptionEnded) -> None:
        info = message.payload
        previous = self._by_connection.get(info.connection_id)
        if isinstance(message, SubscriptionActivated):
            if previous is not None and previous != info.subscription_id:
                self._by_id.pop(previous, None)
                self._remember_ended(previous)
            self._by_id[info.subscription_id] = info
            self._by_connection[info.connection_id] = info.subscription_id
            self._ended.pop(info.subscription_id, None)
        else:
            self._by_id.pop(info.subscription_id, None)
            self._remember_ended(info.subscription_id)
            if previous == info.subscription_id:
                self._by_connection.pop(info.connection_id, None)
        self._changed.set()
        self._changed = asyncio.Event()

    async def run(self, settings: Settings, restart_seconds: float = 1.0) -> None:
        """Background job: `follow`, restarted after `restart_seconds` whenever it fails;
        not ready from the failure until the restarted follower has caught up."""
        while True:
            try:
                await self.follow(settings)
                log.warning("subscription directory follower stopped; restarting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("subscription directory follower failed", error=type(exc).__name__)
            finally:
                self._following = False
                self._ready.clear()
            self.restarts += 1
            await asyncio.sleep(restart_seconds)

    async def follow(self, settings: Settings) -> None:
        """Reads the topic from the start, then keeps following it (until it fails)."""
        topic = settings.topic(SUBSCRIPTIONS)
        adapter = SUBSCRIPTIONS.adapter()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self._following = True
        try:
            # Without a group, aiokafka assigns every partition, from the earliest offset.
            consumer.subscribe([topic])
            targets: dict[TopicPartition, int] | None = None
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        try:
                            self.apply(adapter.validate_json(record.value or b""))
                        except ValidationError:
                            log.warning("unreadable subscription record ignored")
                if self.ready or not consumer.assignment():
                    continue
                if targets is None:  # the end of the topic as it was when we started
                    targets = await consumer.end_offsets(list(consumer.assignment()))
                if await _caught_up(consumer, targets):
                    self._ready.set()
                    log.info("subscription directory ready", subscriptions=len(self._by_id))
        finally:
            self._following = False
            await consumer.stop()


async def _caught_up(consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int]) -> bool:
    for partition, end in targets.items():
        if await consumer.position(partition) < end:
            return False
    return True
