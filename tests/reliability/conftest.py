"""A MongoDB database on the real server for effect-order tests (ports faked, Mongo real)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.infra.endpoints import InfraEndpoints
from shared.mongo import Document


@pytest.fixture
async def db(infra: InfraEndpoints, mongo_db: str) -> AsyncIterator[AsyncDatabase[Document]]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    try:
        yield client[mongo_db]
    finally:
        await client.close()
