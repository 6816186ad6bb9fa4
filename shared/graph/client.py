"""The Graph HTTP client: bearer token, per-mailbox limits, Retry-After, bounded retries.

One instance per service. Every call names the connection it acts for, which is both the
token to use and the mailbox whose limits apply. Responses are JSON dicts: the callers
(syncer, writer) parse them into their own allow-listed models.
"""

from __future__ import annotations

import asyncio
import random
import ssl
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from shared.graph.errors import (
    GraphError,
    GraphThrottled,
    GraphUnauthorized,
    GraphUnavailable,
    error_for,
)
from shared.graph.limiter import MailboxLimiter
from shared.graph.tokens import AccessTokenSource
from shared.observability import metrics
from shared.observability.logging import get_logger

log = get_logger(__name__)

RETRYABLE = frozenset({429, 500, 502, 503, 504})
# Outlook ids change when an item moves between folders (to Deleted Items and back...);
# immutable ids don't. The preference applies only to the request it is sent with
# (learn.microsoft.com/graph/outlook-immutable-id), so every call carries it, the
# subscription create too (its notifications then carry immutable ids). ADR 0015.
IMMUTABLE_IDS = 'IdType="ImmutableId"'


def with_preferences(headers: Mapping[str, str] | None) -> dict[str, str]:
    """The caller's headers with `Prefer: IdType="ImmutableId"` added to its preferences."""
    merged = {k: v for k, v in (headers or {}).items() if k.lower() != "prefer"}
    asked = [v for k, v in (headers or {}).items() if k.lower() == "prefer"]
    merged["Prefer"] = ", ".join([*asked, IMMUTABLE_IDS])
    return merged


@dataclass(frozen=True)
class GraphResponse:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str]

    @property
    def request_id(self) -> str | None:
        return self.headers.get("request-id")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 60.0  # a Retry-After beyond this is given up on (GraphThrottled)

    def backoff(self, attempt: int) -> float:
        delay: float = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return delay * (0.5 + random.random() / 2)  # noqa: S311 (jitter, not crypto)


def tls_context(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """System trust, plus an extra CA (the emulator's) when configured."""
    if not ca_bundle:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_bundle)
    return context


def create_http_client(ca_bundle: str | None, timeout: float = 30.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        verify=tls_context(ca_bundle),
        timeout=httpx.Timeout(timeout, connect=10.0),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
    )


class GraphClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        tokens: AccessTokenSource,
        *,
        service: str,
        limiter: MailboxLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._tokens = tokens
        self._service = service
        self.limiter = limiter or MailboxLimiter()
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        return f"{self._base_url}/{path_or_url.lstrip('/')}"

    async def request(
        self,
        connection_id: str,
        method: str,
        path_or_url: str,
        *,
        operation: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> GraphResponse:
        """One logical call, retried on throttling and transient failures."""
        url = self.url(path_or_url)
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            blocked = self.limiter.blocked_for(connection_id)
            if blocked > self._retry.max_delay:
                # Graph asked this mailbox to wait longer than we would: fail fast rather
                # than hold the caller (and the records queued behind it) that long.
                raise GraphThrottled(
                    429, "mailboxBackingOff", "the mailbox is backing off", None, blocked
                )
            token = await self._tokens.access_token(connection_id, force_refresh=refreshed)
            request_headers = {
                "Authorization": f"Bearer {token}",
                "client-request-id": str(uuid.uuid4()),
                "Accept": "application/json",
                **with_preferences(headers),
            }
            try:
                async with self.limiter.slot(connection_id):
                    response = await self._http.request(
                        method, url, params=params, json=json, headers=request_headers
                    )
            except httpx.TransportError as exc:
                metrics.GRAPH_REQUESTS.labels(self._service, operation, "network").inc()
                if attempt >= self._retry.max_attempts:
                    raise GraphUnavailable(0, "networkError", type(exc).__name__) from exc
                await self._sleep(self._retry.backoff(attempt))
                continue
            metrics.GRAPH_REQUESTS.labels(self._service, operation, str(response.status_code)).inc()
            if response.is_success:
                return GraphResponse(response.status_code, _json(response), response.headers)
            error = _error(response)
            if response.status_code == 401 and not refreshed:
                refreshed = True  # the token may have been revoked/rotated: refresh once
                continue
            if response.status_code in RETRYABLE:
                delay = error.retry_after
                if delay is not None:
                    self.limiter.block(connection_id, delay)
                if attempt < self._retry.max_attempts and (delay or 0) <= self._retry.max_delay:
                    wait = delay if delay is not None else self._retry.backoff(attempt)
                    log.info(
                        "graph asked to retry",
                        operation=operation,
                        status=response.status_code,
                        wait=round(wait, 2),
                        attempt=attempt,
                    )
                    await self._sleep(wait)
                    continue
            if isinstance(error, GraphUnauthorized):
                log.warning("graph refused the token", operation=operation)
            raise error

    async def get(
        self, connection_id: str, path: str, *, operation: str, **kw: Any
    ) -> GraphResponse:
        return await self.request(connection_id, "GET", path, operation=operation, **kw)


def _json(response: httpx.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError as exc:
        raise GraphError(
            response.status_code, "invalidResponse", "Graph answered with invalid JSON"
        ) from exc
    if not isinstance(body, dict):
        raise GraphError(response.status_code, "invalidResponse", "Graph answered a non-object")
    return body


def _error(response: httpx.Response) -> GraphError:
    code, message = "unknownError", response.reason_phrase or "error"
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)[:500]
    except ValueError:
        pass
    return error_for(
        response.status_code,
        code,
        message,
        response.headers.get("request-id"),
        _retry_after(response.headers.get("retry-after")),
    )


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
