"""The emulator's token-signing key and its JWKS, like the tenant keys at /discovery/v2.0/keys."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


_process_key: SigningKey | None = None


class SigningKey:
    """One RSA key pair; `kid` is a thumbprint of the public key so it is stable across reloads."""

    @classmethod
    def shared(cls) -> SigningKey:
        """One key per process: generating RSA keys per test would dominate test time."""
        global _process_key
        if _process_key is None:
            _process_key = cls()
        return _process_key

    def __init__(self, private_key: rsa.RSAPrivateKey | None = None) -> None:
        self.private_key = private_key or rsa.generate_private_key(
            public_exponent=65537, key_size=2048
        )
        self.public_key = self.private_key.public_key()
        der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()  # noqa: S324 - a key id, like x5t

    def jwk(self) -> dict[str, Any]:
        numbers = self.public_key.public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "alg": "RS256",
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }

    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    @classmethod
    def from_pem(cls, pem: str) -> SigningKey:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the emulator's signing key must be RSA")
        return cls(key)
