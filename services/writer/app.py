"""Writer wiring: consumes the meeting-commands topic and writes to the manager's Outlook
calendar with their own delegated token (the same vault the syncer reads)."""

from __future__ import annotations

from services.writer.adapters import store as writer_store
from services.writer.adapters.outlook import OutlookCalendar
from services.writer.handlers import WriterHandlers
from shared.audit import AuditLog
from shared.connections import registry as connection_registry
from shared.connections.events import ConnectionEvents
from shared.contracts.topics import MEETING_COMMANDS
from shared.credentials import vault as token_vault
from shared.credentials.cipher import TokenCipher
from shared.graph.client import GraphClient, create_http_client
from shared.identity.token_source import VaultTokenSource
from shared.messaging.broker import create_broker
from shared.messaging.consumer import subscribe
from shared.messaging.publisher import KafkaPublisher
from shared.mongo import create_mongo_client, database, ensure_indexes, ping
from shared.observability.http import create_ops_app
from shared.service import Service
from shared.settings import Settings


def build_service(settings: Settings) -> Service:
    broker = create_broker(settings, "writer")
    publisher = KafkaPublisher(broker, settings)
    mongo = create_mongo_client(settings)
    db = database(mongo, settings)
    vault = token_vault.TokenVault(db, TokenCipher.from_settings(settings))
    http = create_http_client(settings.ca_bundle)
    graph = GraphClient(
        http, settings.graph_base_url, VaultTokenSource(vault, settings), service="writer"
    )
    audit = AuditLog(publisher, "writer")
    handlers = WriterHandlers(
        store=writer_store.WriterStore(db),
        outlook=OutlookCalendar(graph),
        registry=connection_registry.ConnectionRegistry(db),
        publisher=publisher,
        audit=audit,
        events=ConnectionEvents(publisher, audit),
    )
    subscribe(broker, settings, MEETING_COMMANDS, "writer", handlers.on_command)

    async def mongo_ready() -> bool:
        return await ping(mongo)

    async def create_indexes() -> None:
        await ensure_indexes(
            db, [*writer_store.INDEXES, *token_vault.INDEXES, *connection_registry.INDEXES]
        )

    async def close_clients() -> None:
        await http.aclose()
        await mongo.close()

    app = create_ops_app("writer", {"mongodb": mongo_ready})
    app.state.handlers = handlers
    return Service(
        name="writer",
        http_app=app,
        host=settings.http_host,
        port=settings.writer_port,
        broker=broker,
        on_start=[create_indexes],
        on_stop=[close_clients],
    )
