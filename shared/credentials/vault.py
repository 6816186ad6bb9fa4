"""The token vault: each connection's MSAL token cache, sealed, in its own collection.

A shared component (like a secret store), used by the ingress (writes on connect), and the
syncer and writer (read, and write back rotated refresh tokens). Every write is
conditional on the version read, so a concurrent refresh elsewhere is never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bson.binary import Binary
from pymongo.asynchronous.database import AsyncDatabase

from shared.credentials.cipher import Sealed, TokenCipher
from shared.mongo import Document, IndexSpec

COLLECTION = "credentials"
INDEXES = [IndexSpec(COLLECTION, [("key_id", 1)])]


@dataclass(frozen=True)
class VaultEntry:
    connection_id: str
    token_cache: str  # MSAL SerializableTokenCache state (JSON): secret
    version: int


class TokenVault:
    def __init__(self, db: AsyncDatabase[Document], cipher: TokenCipher) -> None:
        self._collection = db[COLLECTION]
        self._cipher = cipher

    async def load(self, connection_id: str) -> VaultEntry | None:
        doc = await self._collection.find_one({"_id": connection_id})
        if doc is None:
            return None
        sealed = Sealed(doc["key_id"], bytes(doc["nonce"]), bytes(doc["ciphertext"]))
        plaintext = self._cipher.open(connection_id, sealed)
        return VaultEntry(connection_id, plaintext.decode(), int(doc["version"]))

    async def save(
        self, connection_id: str, token_cache: str, expected_version: int | None = None
    ) -> bool:
        """Stores the cache; with `expected_version`, only if nobody wrote since (else False)."""
        sealed = self._cipher.seal(connection_id, token_cache.encode())
        fields = {
            "key_id": sealed.key_id,
            "nonce": Binary(sealed.nonce),
            "ciphertext": Binary(sealed.ciphertext),
            "updated_at": datetime.now(UTC),
        }
        if expected_version is None:
            await self._collection.update_one(
                {"_id": connection_id}, {"$set": fields, "$inc": {"version": 1}}, upsert=True
            )
            return True
        result = await self._collection.update_one(
            {"_id": connection_id, "version": expected_version},
            {"$set": fields, "$inc": {"version": 1}},
        )
        return result.modified_count == 1

    async def delete(self, connection_id: str) -> bool:
        result = await self._collection.delete_one({"_id": connection_id})
        return result.deleted_count == 1

    async def rotate(self) -> int:
        """Re-seals every entry under the active key; entries refreshed meanwhile are retried."""
        rotated = 0
        async for doc in self._collection.find({"key_id": {"$ne": self._cipher.active_key_id}}):
            for _ in range(5):
                entry = await self.load(doc["_id"])
                if entry is None:
                    break
                if await self.save(entry.connection_id, entry.token_cache, entry.version):
                    rotated += 1
                    break
        return rotated
