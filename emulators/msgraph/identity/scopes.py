"""Scope strings: Graph scopes may be asked as `Calendars.Read` or with the resource prefix."""

from __future__ import annotations

from collections.abc import Iterable

GRAPH_RESOURCE = "https://graph.microsoft.com/"
# OpenID Connect scopes: not Graph permissions; never in the access token's `scp`.
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})


def split_scopes(scope: str | Iterable[str] | None) -> list[str]:
    """Space-separated (or listed) scopes, de-duplicated, order kept."""
    if scope is None:
        return []
    items = scope.split() if isinstance(scope, str) else [s for part in scope for s in part.split()]
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


def short_name(scope: str) -> str:
    """`https://graph.microsoft.com/Calendars.Read` → `Calendars.Read`; `.default` kept as is."""
    if scope.lower().startswith(GRAPH_RESOURCE):
        return scope[len(GRAPH_RESOURCE) :]
    return scope


def resource_scopes(scopes: Iterable[str]) -> list[str]:
    """The Graph permissions among asked scopes (OIDC scopes dropped), in short form."""
    return [short_name(s) for s in scopes if s.lower() not in OIDC_SCOPES]


def contains(scopes: Iterable[str], wanted: str) -> bool:
    """Scope names are case-insensitive in Entra."""
    lowered = {short_name(s).lower() for s in scopes}
    return short_name(wanted).lower() in lowered
