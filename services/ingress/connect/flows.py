"""Pending OAuth flows, server-side: sealed (the PKCE verifier is a secret), keyed by a hash
of `state`, short-lived, and single-use (taken with an atomic delete)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bson.binary import Binary
from pymongo.asynchronous.database import AsyncDatabase

from shared.credentials.cipher import Sealed, TokenCipher
from shared.mongo import Document, IndexSpec

COLLECTION = "oauth_flows"
INDEXES = [IndexSpec(COLLECTION, [("expires_at", 1)], options={"expireAfterSeconds": 0})]


def _state_key(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


@dataclass(frozen=True)
class PendingFlow:
    user_id: str
    return_url: str
    flow: dict[str, Any]  # MSAL's auth code flow (state, code_verifier, nonce, ...)


class OAuthFlowStore:
    def __init__(self, db: AsyncDatabase[Document], cipher: TokenCipher, ttl: timedelta) -> None:
        self._collection = db[COLLECTION]
        self._cipher = cipher
        self._ttl = ttl

    async def put(self, pending: PendingFlow) -> None:
        key = _state_key(str(pending.flow["state"]))
        sealed = self._cipher.seal(key, json.dumps(pending.flow).encode())
        await self._collection.insert_one(
            {
                "_id": key,
                "user_id": pending.user_id,
                "return_url": pending.return_url,
                "key_id": sealed.key_id,
                "nonce": Binary(sealed.nonce),
                "flow": Binary(sealed.ciphertext),
                "expires_at": datetime.now(UTC) + self._ttl,
            }
        )

    async def take(self, state: str) -> PendingFlow | None:
        """The flow for `state`, once: a replayed or expired state finds nothing."""
        key = _state_key(state)
        doc = await self._collection.find_one_and_delete({"_id": key})
        if doc is None or doc["expires_at"] <= datetime.now(UTC):
            return None
        sealed = Sealed(doc["key_id"], bytes(doc["nonce"]), bytes(doc["flow"]))
        flow = json.loads(self._cipher.open(key, sealed))
        return PendingFlow(str(doc["user_id"]), str(doc["return_url"]), flow)
