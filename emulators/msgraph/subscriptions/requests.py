"""Validation of subscription bodies: what Graph rejects with 400 before any handshake."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from emulators.msgraph.errors import GraphError
from emulators.msgraph.principal import Principal
from emulators.msgraph.subscriptions.settings import NotificationSettings

CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
_RESOURCE = re.compile(r"^/?(me|users/(?P<user>[^/]+))/(events|calendar/events)$", re.IGNORECASE)
MAX_CLIENT_STATE = 128


def bad_request(message: str, code: str = "InvalidRequest") -> GraphError:
    return GraphError(400, code, message)


def parse_change_type(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request("The changeType property is required.")
    parts = [p.strip() for p in value.split(",")]
    unknown = [p for p in parts if p not in CHANGE_TYPES]
    if unknown or not parts:
        raise bad_request(f"'{value}' is not a valid changeType. Use created, updated, deleted.")
    return ",".join(parts)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: Any, name: str, settings: NotificationSettings) -> str:
    """Graph requires https; the emulator also takes http to loopback (or any host if allowed)."""
    if not isinstance(value, str) or not value:
        raise bad_request(f"The {name} property is required.")
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and (settings.allow_http_any_host or _is_loopback(parts.hostname)):
        return value
    raise bad_request(f"The {name} must use https.", code="ValidationError")


def mailbox_of(resource: Any, principal: Principal) -> str:
    """`me/events` or `users/{id|upn}/events` → the mailbox user id (delegated: only one's own)."""
    if not isinstance(resource, str):
        raise bad_request("The resource property is required.")
    match = _RESOURCE.match(resource.strip())
    if match is None:
        raise bad_request(
            f"Resource '{resource}' is not supported. Use 'me/events' or 'users/{{id}}/events'.",
            code="ExtensionError",
        )
    return match.group("user") or principal.user_id


def parse_expiration(value: Any, now: datetime, settings: NotificationSettings) -> datetime:
    if not isinstance(value, str):
        raise bad_request("The expirationDateTime property is required.")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad_request(f"Cannot convert '{value}' to a DateTimeOffset.") from exc
    if moment.tzinfo is None:
        raise bad_request("expirationDateTime must carry a UTC offset.")
    if moment <= now:
        raise bad_request(
            "Subscription expiration date cannot be in the past.", code="ExtensionError"
        )
    if moment - now > settings.max_lifetime:
        minutes = int(settings.max_lifetime.total_seconds() // 60)
        raise bad_request(
            f"Subscription expiration can only be {minutes} minutes in the future.",
            code="ExtensionError",
        )
    return moment


def parse_client_state(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_CLIENT_STATE:
        raise bad_request(f"clientState must be a string of at most {MAX_CLIENT_STATE} characters.")
    return value
