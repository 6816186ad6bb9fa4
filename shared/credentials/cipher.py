"""AES-256-GCM under named keys. The connection id is the associated data, so a sealed
token cache can't be copied onto another connection's record and still open."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from shared.settings import Settings


class CipherConfigError(RuntimeError):
    """The keys are missing or malformed (said without ever printing a key)."""


class DecryptionError(RuntimeError):
    """Unknown key id, wrong connection, or tampered ciphertext."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


class TokenCipher:
    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise CipherConfigError(f"the active key id {active_key_id!r} has no key")
        for key_id, key in keys.items():
            if len(key) != 32:
                raise CipherConfigError(f"key {key_id!r} must be 32 bytes (AES-256)")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active_key_id = active_key_id

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCipher:
        return cls(*configured_keys(settings))

    def seal(self, connection_id: str, plaintext: bytes) -> Sealed:
        nonce = os.urandom(12)
        aead = self._keys[self.active_key_id]
        return Sealed(
            self.active_key_id, nonce, aead.encrypt(nonce, plaintext, connection_id.encode())
        )

    def open(self, connection_id: str, sealed: Sealed) -> bytes:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise DecryptionError(f"no key with id {sealed.key_id!r} is configured")
        try:
            return aead.decrypt(sealed.nonce, sealed.ciphertext, connection_id.encode())
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not open under its key") from exc


def configured_keys(settings: Settings) -> tuple[dict[str, bytes], str]:
    """The token keys by id and the active key id (also the root of other services' keyed
    hashes, e.g. the syncer's calendar items, derived per purpose)."""
    if not settings.token_keys or not settings.token_active_key_id:
        raise CipherConfigError(
            "token encryption keys are not configured: set SMVUE_TOKEN_KEYS "
            '(e.g. {"k1": "<base64 32 bytes>"}) and SMVUE_TOKEN_ACTIVE_KEY_ID '
            "(`smvue-sync keys generate` makes a key)"
        )
    return _decode_keys(settings.token_keys), settings.token_active_key_id


def _decode_keys(raw: Mapping[str, SecretStr]) -> dict[str, bytes]:
    keys = {}
    for key_id, secret in raw.items():
        try:
            keys[key_id] = base64.b64decode(secret.get_secret_value(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CipherConfigError(f"key {key_id!r} is not valid base64") from exc
    return keys


def generate_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()
