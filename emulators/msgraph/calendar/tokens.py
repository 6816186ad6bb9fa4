"""Opaque state tokens ($skiptoken / $deltatoken) for calendarView delta.

The delta docs call them "completely opaque to the client"; here they are AES-GCM sealed JSON
(the window, the mailbox, the issue time and a server-side sync state id), so a client can
neither read nor forge one. A token that doesn't open is garbage (400); one that opens but
whose sync state is gone or too old needs a full resync (410).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_CONTEXT = b"msgraph-emulator/calendarView/delta/v1"


class TokenCodec:
    """Seals and opens token payloads with one AES-256-GCM key (kept across --state reloads)."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(self.key)

    def seal(self, payload: dict[str, Any]) -> str:
        nonce = os.urandom(12)
        plain = json.dumps(payload, separators=(",", ":")).encode()
        sealed = nonce + self._aead.encrypt(nonce, plain, _CONTEXT)
        return base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def open(self, token: str) -> dict[str, Any] | None:
        """The payload, or None when the token is not one of ours (garbage, edited, foreign)."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if len(raw) < 12 + 16:
                return None
            plain = self._aead.decrypt(raw[:12], raw[12:], _CONTEXT)
            payload = json.loads(plain)
        except (binascii.Error, ValueError, InvalidTag):
            return None
        return payload if isinstance(payload, dict) else None

    def key_b64(self) -> str:
        return base64.b64encode(self.key).decode()

    @classmethod
    def from_b64(cls, key: str) -> TokenCodec:
        return cls(base64.b64decode(key))
