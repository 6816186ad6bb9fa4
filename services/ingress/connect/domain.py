"""Pure rules of connecting: error mapping, what a grant allows, who the account is."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from shared.contracts.connections import AccountKind, ConnectedAccount
from shared.contracts.user_errors import UserErrorCode, user_message

CONSUMERS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
MAX_RETURN_URL = 2000


class InvalidReturnUrl(ValueError):
    pass


def validate_return_url(url: str, allowed_hosts: Collection[str] = ()) -> str:
    """https on an allowed host (`name` or `*.domain`), or loopback (local development);
    anything else would make the callback an open redirect."""
    if len(url) > MAX_RETURN_URL:
        raise InvalidReturnUrl("return_url is too long")
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme in ("http", "https") and host and _is_loopback(host):
        return url
    if parts.scheme != "https" or not host:
        raise InvalidReturnUrl("return_url must be an https URL (or http on loopback)")
    if not any(_host_matches(host, pattern.lower()) for pattern in allowed_hosts):
        raise InvalidReturnUrl(f"return_url host {host!r} is not an allowed SMVue host")
    return url


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# AADSTS codes (learn.microsoft.com, "Microsoft Entra authentication and authorization error
# codes") grouped by what the help page tells the person.
_ADMIN_APPROVAL = re.compile(r"AADSTS(65001|90094|90099|50105|65005)\b")
_CONDITIONAL_ACCESS = re.compile(r"AADSTS(5300[0-4]|530\d{3})\b")


def error_from_authorize_redirect(error: str, description: str) -> UserErrorCode:
    """The `error` + `error_description` Microsoft sends back, as the help page's words.

    Need admin approval (consent, assignment), blocked by Conditional Access, or — for
    everything else (declined, wrong account such as AADSTS50020, expired code, an
    unknown error) — "Unable to authorize Outlook Calendar", whose solutions start with
    "Ensure you're logged into the correct Microsoft account"."""
    if _ADMIN_APPROVAL.search(description) or error == "consent_required":
        return UserErrorCode.ADMIN_APPROVAL_REQUIRED
    if _CONDITIONAL_ACCESS.search(description):
        return UserErrorCode.CONDITIONAL_ACCESS_BLOCKED
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
