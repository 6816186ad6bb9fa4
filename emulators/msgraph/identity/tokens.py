"""JWTs the identity platform issues: Graph access tokens and OpenID Connect id tokens (RS256)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import jwt

from emulators.msgraph.directory import Tenant, User
from emulators.msgraph.identity.keys import SigningKey

# Microsoft Graph's application id: the `aud` of a v1.0 Graph access token.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_AUDIENCES = (GRAPH_APP_ID, "https://graph.microsoft.com")


def issuer_for(base_url: str, tenant_id: str) -> str:
    """v2.0 issuer, like https://login.microsoftonline.com/{tid}/v2.0 on the emulator's host."""
    return f"{base_url.rstrip('/')}/{tenant_id}/v2.0"


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def encode_access_token(
    key: SigningKey,
    *,
    base_url: str,
    user: User,
    tenant: Tenant,
    client_id: str,
    scopes: Iterable[str],
    now: datetime,
    lifetime: timedelta,
) -> str:
    claims: dict[str, Any] = {
        "aud": GRAPH_APP_ID,
        "iss": issuer_for(base_url, tenant.id),
        "iat": _epoch(now),
        "nbf": _epoch(now),
        "exp": _epoch(now + lifetime),
        "appid": client_id,
        "azp": client_id,
        "idtyp": "user",
        "name": user.display_name,
        "oid": user.id,
        "scp": " ".join(scopes),
        "sub": user.id,
        "tid": tenant.id,
        "upn": user.user_principal_name,
        "unique_name": user.user_principal_name,
        "uti": uuid.uuid4().hex,
        "ver": "1.0",
    }
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def encode_id_token(
    key: SigningKey,
    *,
    base_url: str,
    user: User,
    tenant: Tenant,
    client_id: str,
    now: datetime,
    lifetime: timedelta,
    nonce: str | None,
) -> str:
    claims: dict[str, Any] = {
        "aud": client_id,
        "iss": issuer_for(base_url, tenant.id),
        "iat": _epoch(now),
        "nbf": _epoch(now),
        "exp": _epoch(now + lifetime),
        "email": user.mail,
        "name": user.display_name,
        "oid": user.id,
        "preferred_username": user.user_principal_name,
        "sub": user.id,
        "tid": tenant.id,
        "ver": "2.0",
    }
    if nonce:
        claims["nonce"] = nonce
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def decode_access_token(key: SigningKey, token: str) -> dict[str, Any]:
    """Checks signature and audience; expiry is checked by the caller against the emulator clock."""
    claims: dict[str, Any] = jwt.decode(
        token,
        key.public_key,
        algorithms=["RS256"],
        audience=list(GRAPH_AUDIENCES),
        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
    )
    return claims
