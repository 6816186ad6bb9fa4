"""The token vault: each connection's MSAL token cache, sealed, in its own collection.

A shared component (like a secret store), used by the ingress (writes on connect), and the
syncer and writer (read, and write back rotated refresh tokens). Every write is
conditional on the version read, so a concurrent refresh elsewhere is never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from bson.binary import Binary
from pymongo.asynchronous.database import AsyncDatabase

from shared.credentials.cipher import DecryptionError, Sealed, TokenCipher
from shared.mongo import Document, IndexSpec

COLLECTION = "credentials"
INDEXES = [IndexSpec(COLLECTION, [("key_id", 1)])]


@dataclass(frozen=True)
class VaultEntry:
    connection_id: str
    token_cache: str  # MSAL SerializableTokenCache state (JSON): secret
    version: int


@dataclass
class RotationReport:
    rotated: int = 0
    unreadable: list[str] = field(default_factory=list)  # no configured key opens them
    busy: list[str] = field(default_factory=list)  # refreshed all the while: run again

    @property
    def complete(self) -> bool:
        return not self.unreadable and not self.busy


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

    async def rotate(self) -> RotationReport:
        """Re-seals every entry under the active key. An entry refreshed meanwhile is
        retried; one that no configured key opens is reported and left as it is (never
        lost), and the rotation goes on with the others."""
        report = RotationReport()
        async for doc in self._collection.find({"key_id": {"$ne": self._cipher.active_key_id}}):
            connection_id = str(doc["_id"])
            for _ in range(5):
                try:
                    entry = await self.load(connection_id)
                except DecryptionError:
                    report.unreadable.append(connection_id)
                    break
                if entry is None:
                    break
                if await self.save(entry.connection_id, entry.token_cache, entry.version):
                    report.rotated += 1
                    break
            else:
                report.busy.append(connection_id)
        return report
