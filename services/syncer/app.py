"""Syncer wiring: consumes connections, connection commands, notifications and rosters
(each becomes a pending job for the connection's worker); a timer renews subscriptions,
reconciles, slides the window and wakes due work."""

from __future__ import annotations

import asyncio

from services.syncer.adapters import store as syncer_store
from services.syncer.adapters.graph_calendar import GraphCalendar
from services.syncer.domain.kept import AddressHasher
from services.syncer.handlers import SyncerHandlers
from services.syncer.rounds import RoundRunner
from services.syncer.settings import SyncerSettings
from services.syncer.subscriptions import SubscriptionKeeper
from services.syncer.tokens import SyncerTokens
from shared.audit import AuditLog
from shared.connections import registry as connection_registry
from shared.connections.events import ConnectionEvents
from shared.contracts.topics import CONNECTION_COMMANDS, CONNECTIONS, NOTIFICATIONS, ROSTER
from shared.credentials import vault as token_vault
from shared.credentials.cipher import TokenCipher, configured_keys
from shared.graph.client import GraphClient, create_http_client
from shared.identity.token_source import VaultTokenSource
from shared.messaging.broker import create_broker
from shared.messaging.consumer import subscribe
from shared.messaging.publisher import KafkaPublisher
from shared.mongo import create_mongo_client, database, ensure_indexes, ping
from shared.observability.http import create_ops_app
from shared.observability.logging import get_logger
from shared.service import Service
from shared.settings import Settings

log = get_logger(__name__)


def build_service(settings: Settings, syncer_settings: SyncerSettings | None = None) -> Service:
    tuning = syncer_settings or SyncerSettings()
    broker = create_broker(settings, "syncer")
    publisher = KafkaPublisher(broker, settings)
    mongo = create_mongo_client(settings)
    db = database(mongo, settings)
    vault = token_vault.TokenVault(db, TokenCipher.from_settings(settings))
    tokens = SyncerTokens(VaultTokenSource(vault, settings))
    http = create_http_client(settings.ca_bundle)
    graph = GraphCalendar(GraphClient(http, settings.graph_base_url, tokens, service="syncer"))
    store = syncer_store.SyncerStore(db)
    audit = AuditLog(publisher, "syncer")
    handlers = SyncerHandlers(
        store=store,
        graph=graph,
        rounds=RoundRunner(
            store,
            graph,
            publisher,
            audit,
            tuning,
            hasher=AddressHasher.derived_from(*configured_keys(settings)),
        ),
        subscriptions=SubscriptionKeeper(store, graph, publisher, audit, settings, tuning),
        registry=connection_registry.ConnectionRegistry(db),
        events=ConnectionEvents(publisher, audit),
        vault=vault,
        tokens=tokens,
        audit=audit,
        settings=tuning,
        publisher=publisher,
    )
    subscribe(broker, settings, CONNECTIONS, "syncer", handlers.on_connection_event)
    subscribe(broker, settings, CONNECTION_COMMANDS, "syncer", handlers.on_connection_command)
    subscribe(broker, settings, NOTIFICATIONS, "syncer", handlers.on_notification)
    subscribe(broker, settings, ROSTER, "syncer", handlers.on_roster)

    async def mongo_ready() -> bool:
        return await ping(mongo)

    async def create_indexes() -> None:
        await ensure_indexes(
            db,
            [*syncer_store.INDEXES, *token_vault.INDEXES, *connection_registry.INDEXES],
        )
        moved = await store.migrate_published()  # the collection of earlier versions
        if moved:
            log.info("published versions moved into calendar items", moved=moved)

    async def timer() -> None:
        """First tick at start: wakes work left pending by a previous run."""
        while True:
            try:
                await handlers.tick()
            except Exception:  # a failed tick must not stop the next one
                log.exception("syncer tick failed")
            await asyncio.sleep(tuning.tick_seconds)

    async def close_clients() -> None:
        await handlers.workers.stop()
        await http.aclose()
        await mongo.close()

    app = create_ops_app("syncer", {"mongodb": mongo_ready})
    app.state.handlers = handlers
    return Service(
        name="syncer",
        http_app=app,
        host=settings.http_host,
        port=settings.syncer_port,
        broker=broker,
        on_start=[create_indexes],
        on_stop=[close_clients],
        background=[timer],
    )
