"""Pure rules of connecting: error mapping, what a grant allows, who the account is."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from shared.contracts.connections import AccountKind, ConnectedAccount
from shared.contracts.user_errors import UserErrorCode, user_message

CONSUMERS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
MAX_RETURN_URL = 2000


class InvalidReturnUrl(ValueError):
    pass


def validate_return_url(url: str) -> str:
    """https anywhere, or http on loopback only (local development)."""
    if len(url) > MAX_RETURN_URL:
        raise InvalidReturnUrl("return_url is too long")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url
    raise InvalidReturnUrl("return_url must be an https URL (or http on loopback)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def error_from_authorize_redirect(error: str, description: str) -> UserErrorCode:
    """The `error` + `error_description` Microsoft sends back, as the help page's words."""
    if "AADSTS65001" in description or "AADSTS90094" in description:
        return UserErrorCode.ADMIN_APPROVAL_REQUIRED
    if "AADSTS53003" in description:
        return UserErrorCode.CONDITIONAL_ACCESS_BLOCKED
    if error == "consent_required":
        return UserErrorCode.ADMIN_APPROVAL_REQUIRED
    return UserErrorCode.AUTHORIZATION_FAILED


def error_from_token_result(result: dict[str, Any]) -> UserErrorCode:
    description = str(result.get("error_description", ""))
    code = error_from_authorize_redirect(str(result.get("error", "")), description)
    return code


@dataclass(frozen=True)
class GrantDecision:
    granted: list[str]
    can_write: bool
    error: UserErrorCode | None


def evaluate_grant(scope: str | None) -> GrantDecision:
    """Calendars.ReadWrite → full; Calendars.Read only → read-only; neither → refused."""
    granted = sorted({s.rsplit("/", 1)[-1] for s in (scope or "").split() if s})
    lowered = {s.lower() for s in granted}
    if "calendars.readwrite" in lowered:
        return GrantDecision(granted, True, None)
    if "calendars.read" in lowered:
        return GrantDecision(granted, False, None)
    return GrantDecision(granted, False, UserErrorCode.INSUFFICIENT_PERMISSIONS)


def account_from_claims(claims: dict[str, Any]) -> ConnectedAccount:
    tenant = str(claims.get("tid") or "")
    upn = str(claims.get("preferred_username") or claims.get("email") or claims.get("upn") or "")
    if not tenant or not upn:
        raise ValueError("the id token lacks tid or preferred_username")
    return ConnectedAccount(
        user_principal_name=upn,
        display_name=str(claims["name"]) if claims.get("name") else None,
        tenant_id=tenant,
        kind=AccountKind.PERSONAL if tenant == CONSUMERS_TENANT_ID else AccountKind.WORK,
        graph_user_id=str(claims["oid"]) if claims.get("oid") else None,
        email=str(claims["email"]) if claims.get("email") else None,
    )


def return_redirect(return_url: str, *, error: UserErrorCode | None = None) -> str:
    """The return URL with `status=connected`, or `status=error&code=…&message=…`."""
    parts = urlsplit(return_url)
    params = (
        {"status": "connected"}
        if error is None
        else {"status": "error", "code": error.value, "message": user_message(error)}
    )
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
