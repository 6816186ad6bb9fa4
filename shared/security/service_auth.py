"""Service-to-service authentication for the SMVue backend's calls.

A bearer token checked in constant time against every configured token (several are
accepted at once so they can be rotated without downtime). 401 without a valid one.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from fastapi import HTTPException, Request, status
from pydantic import SecretStr


def token_matches(presented: str, accepted: Sequence[SecretStr]) -> bool:
    """Compares against every accepted token, so timing doesn't tell which one matched."""
    presented_bytes = presented.encode()
    matched = False
    for token in accepted:
        secret = token.get_secret_value().encode()
        if secret and hmac.compare_digest(presented_bytes, secret):
            matched = True
    return matched


def require_service_token(accepted: Sequence[SecretStr]) -> Callable[[Request], None]:
    """A FastAPI dependency: `dependencies=[Depends(require_service_token(tokens))]`."""

    def check(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token or not token_matches(token.strip(), accepted):
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="a valid service bearer token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check
