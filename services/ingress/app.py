"""Ingress wiring: the thin HTTP edge. Every request becomes a Kafka record (or an answer
from state the ingress keeps itself); no slow work inline, no Graph call on the hot path.

Routers (one module each):
- connect/: authorize, OAuth callback, disconnect (connect issue)
- notifications: Graph change + lifecycle notifications (sync issue)
- commands/: schedule / reschedule / cancel / sync now, command status, team rosters
"""

from __future__ import annotations

from datetime import timedelta

from services.ingress.commands import store as command_store
from services.ingress.commands.handlers import CommandHandlers
from services.ingress.commands.routes import command_router
from services.ingress.connect import flows as flow_store
from services.ingress.connect.handlers import ConnectHandlers
from services.ingress.connect.routes import browser_router, service_router
from services.ingress.notifications.directory import SubscriptionDirectory
from services.ingress.notifications.routes import router as notifications_router
from shared.audit import AuditLog
from shared.connections import registry as connection_registry
from shared.connections.events import ConnectionEvents
from shared.contracts.topics import COMMAND_OUTCOMES, ROSTER
from shared.credentials import vault as token_vault
from shared.credentials.cipher import TokenCipher
from shared.messaging.broker import create_broker
from shared.messaging.consumer import subscribe
from shared.messaging.publisher import KafkaPublisher
from shared.mongo import create_mongo_client, database, ensure_indexes, ping
from shared.observability.http import create_ops_app
from shared.security.body_limit import BodyLimitMiddleware
from shared.security.service_auth import require_service_token
from shared.service import Service
from shared.settings import Settings

INDEXES = [
    *command_store.INDEXES,
    *flow_store.INDEXES,
    *token_vault.INDEXES,
    *connection_registry.INDEXES,
]


def build_service(settings: Settings) -> Service:
    broker = create_broker(settings, "ingress")
    publisher = KafkaPublisher(broker, settings)
    mongo = create_mongo_client(settings)
    db = database(mongo, settings)
    cipher = TokenCipher.from_settings(settings)
    registry = connection_registry.ConnectionRegistry(db)
    statuses = command_store.CommandStatusStore(db)

    async def mongo_ready() -> bool:
        return await ping(mongo)

    directory = SubscriptionDirectory()

    async def directory_ready() -> bool:
        return directory.ready

    app = create_ops_app(
        "ingress",
        {"mongodb": mongo_ready, "subscriptions": directory_ready},
        title="SMVue calendar ingress",
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.state.settings = settings
    app.state.publisher = publisher
    app.state.audit = AuditLog(publisher, "ingress")
    app.state.subscription_directory = directory
    app.state.connect = ConnectHandlers(
        settings=settings,
        flows=flow_store.OAuthFlowStore(
            db, cipher, timedelta(seconds=settings.oauth_flow_ttl_seconds)
        ),
        vault=token_vault.TokenVault(db, cipher),
        registry=registry,
        events=ConnectionEvents(publisher, app.state.audit),
        publisher=publisher,
        statuses=statuses,
    )
    app.state.commands = CommandHandlers(
        registry=registry,
        statuses=statuses,
        rosters=command_store.RosterStore(db),
        publisher=publisher,
    )
    subscribe(broker, settings, COMMAND_OUTCOMES, "ingress", app.state.commands.on_outcome)
    subscribe(broker, settings, ROSTER, "ingress", app.state.commands.on_roster)
    service_auth = require_service_token(settings.service_tokens)
    app.include_router(service_router(service_auth))
    app.include_router(command_router(service_auth))
    app.include_router(browser_router)
    app.include_router(notifications_router)

    async def create_indexes() -> None:
        await ensure_indexes(db, INDEXES)

    async def close_clients() -> None:
        app.state.connect.close()
        await mongo.close()

    return Service(
        name="ingress",
        http_app=app,
        host=settings.http_host,
        port=settings.ingress_port,
        broker=broker,
        on_start=[create_indexes],
        on_stop=[close_clients],
        background=[lambda: directory.run(settings), app.state.connect.drain_outbox_forever],
    )
