"""Ingress wiring: the thin HTTP edge. Every request becomes a Kafka record (or an answer
from state the ingress keeps itself); no slow work inline, no Graph call on the hot path.

Routers (one module each):
- oauth / connections: connect, OAuth callback, disconnect (connect issue)
- notifications: Graph change + lifecycle notifications (sync issue)
- commands: schedule / reschedule / cancel / sync now, command outcomes (writer issue)
"""

from __future__ import annotations

from shared.messaging.broker import create_broker
from shared.messaging.publisher import KafkaPublisher
from shared.mongo import create_mongo_client, database, ping
from shared.observability.http import create_ops_app
from shared.service import Service
from shared.settings import Settings


def build_service(settings: Settings) -> Service:
    broker = create_broker(settings, "ingress")
    publisher = KafkaPublisher(broker, settings)
    mongo = create_mongo_client(settings)
    db = database(mongo, settings)

    async def mongo_ready() -> bool:
        return await ping(mongo)

    app = create_ops_app("ingress", {"mongodb": mongo_ready})
    app.state.settings = settings
    app.state.publisher = publisher
    app.state.db = db

    async def close_mongo() -> None:
        await mongo.close()

    return Service(
        name="ingress",
        http_app=app,
        host=settings.http_host,
        port=settings.ingress_port,
        broker=broker,
        on_stop=[close_mongo],
    )
