"""Projector wiring: meetings + connections topics → MongoDB read model; the query API."""

from __future__ import annotations

from services.projector.adapters.pointer import FollowingDatabase
from services.projector.adapters.read_model import (
    INDEXES,
    ConnectionStore,
    MeetingStore,
)
from services.projector.api import query_router
from services.projector.handlers import ProjectorHandlers, Queries
from shared.contracts.topics import CONNECTIONS, MEETINGS
from shared.messaging.broker import create_broker
from shared.messaging.consumer import subscribe
from shared.mongo import create_mongo_client, ensure_indexes, ping
from shared.observability.http import create_ops_app
from shared.security.service_auth import require_service_token
from shared.service import Service
from shared.settings import Settings

SERVICE = "projector"


def build_service(settings: Settings) -> Service:
    broker = create_broker(settings, SERVICE)
    mongo = create_mongo_client(settings)
    # The read model's database is the one the pointer names (ADR 0011: rebuild + switch).
    following = FollowingDatabase(mongo, settings.mongodb_database)
    db = following.stores()
    meetings, connections = MeetingStore(db), ConnectionStore(db)

    handlers = ProjectorHandlers(meetings, connections, linger=settings.projector_linger_seconds)
    # Meeting records in batches (the partitions' batches grouped into one bulk write,
    # ADR 0007); connection records are few and go one by one.
    subscribe(broker, settings, MEETINGS, SERVICE, handlers.on_meetings, batch=True)
    subscribe(broker, settings, CONNECTIONS, SERVICE, handlers.on_connection)

    async def mongo_ready() -> bool:
        return await ping(mongo)

    app = create_ops_app(SERVICE, {"mongodb": mongo_ready}, title="SMVue 1:1 read model")
    app.include_router(
        query_router(
            Queries(meetings, connections),
            require_service_token(settings.service_tokens),
        )
    )

    async def load_pointer_and_create_indexes() -> None:
        await following.load()
        await ensure_indexes(db, INDEXES)

    async def close_mongo() -> None:
        await mongo.close()

    return Service(
        name=SERVICE,
        http_app=app,
        host=settings.http_host,
        port=settings.projector_port,
        broker=broker,
        on_start=[load_pointer_and_create_indexes],
        on_stop=[close_mongo],
        background=[following.follow_forever],
    )
