"""ASGI middleware in front of every non-control request: request log, faults, throttling.

Order: the log sees the final status (faults and 429s included); the throttle admits the
request first (per app per mailbox, Graph `/v1.0` calls only), then an injected fault may
add latency (holding the concurrency slot, like a slow handler) and/or answer an error.
A client that goes away before its request was read is logged 499 (nothing is answered).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulators.msgraph.errors import GraphError, InvalidToken, graph_error
from emulators.msgraph.faults import default_code
from emulators.msgraph.principal import Principal
from emulators.msgraph.requestlog import LOGGED_HEADERS, RequestRecord, redact_query
from emulators.msgraph.state import EmulatorState

CLIENT_CLOSED = 499  # nginx's convention: the client closed the connection first


def _with_request_ids(start: Message, client_request_id: str | None) -> Message:
    """Graph answers every call with `request-id` (and echoes `client-request-id`), which
    clients log and quote to support; error bodies already carry theirs."""
    names = {name.lower() for name, _ in start.get("headers", [])}
    if b"request-id" in names:
        return start
    request_id = str(uuid.uuid4())
    extra = [(b"request-id", request_id.encode())]
    extra.append((b"client-request-id", (client_request_id or request_id).encode()))
    return {**start, "headers": [*start.get("headers", []), *extra]}


def _held(send: Send, delay_ms: int) -> Send:
    """A `send` that waits before the answer starts (the handler's work is already done)."""

    async def held(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(delay_ms / 1000)
        await send(message)

    return held


class TrafficMiddleware:
    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        state = self.state
        path: str = scope["path"]
        method: str = scope["method"]
        headers = Headers(scope=scope)
        principal = self._principal(scope, headers) if path.startswith("/v1.0/") else None
        mailbox = self._mailbox(path, principal)
        record = RequestRecord(
            at=state.clock.now(),
            method=method,
            path=path,
            query=redact_query(scope.get("query_string", b"").decode("latin-1")),
            headers={k: headers[k] for k in LOGGED_HEADERS if k in headers},
            user_id=principal.user_id if principal else None,
            client_id=principal.client_id if principal else None,
            mailbox=mailbox,
            concurrency=state.request_log.enter(mailbox),
        )
        status = 0
        checked = path.startswith("/v1.0/") and state.contract.enabled
        content_type = ""
        chunks: list[bytes] = []

        async def send_and_watch(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if path.startswith("/v1.0/"):
                    message = _with_request_ids(message, headers.get("client-request-id"))
                if checked:
                    content_type = Headers(raw=message.get("headers", [])).get("content-type", "")
            elif message["type"] == "http.response.body" and checked:
                chunks.append(message.get("body", b""))
            await send(message)

        started = time.perf_counter()
        throttle_key: tuple[str, str] | None = None
        try:
            if principal is not None and mailbox is not None:
                key = (principal.client_id, mailbox)
                try:
                    state.throttle.acquire(key, state.clock.now())
                    throttle_key = key
                except GraphError as exc:
                    response = graph_error(
                        exc.status,
                        exc.code,
                        exc.message,
                        headers=exc.headers,
                        client_request_id=headers.get("client-request-id"),
                    )
                    await response(scope, receive, send_and_watch)
                    return
            rule = state.faults.take(method, path, mailbox)
            if rule is not None:
                record.fault_id = rule.id
                if rule.latency_ms:
                    await asyncio.sleep(rule.latency_ms / 1000)
                if rule.status is not None:
                    extra = {"Retry-After": str(rule.retry_after)} if rule.retry_after else {}
                    response = graph_error(
                        rule.status,
                        rule.code or default_code(rule.status),
                        rule.message or "Injected fault.",
                        headers=extra,
                        client_request_id=headers.get("client-request-id"),
                    )
                    await response(scope, receive, send_and_watch)
                    return
                if rule.answer_delay_ms:
                    await self.app(scope, receive, _held(send_and_watch, rule.answer_delay_ms))
                    return
            await self.app(scope, receive, send_and_watch)
        except ClientDisconnect:
            # The client went away before its request was read (a timeout, a killed
            # process): there is no one to answer. Logged 499, "client closed request".
            status = status or CLIENT_CLOSED
        finally:
            if throttle_key is not None:
                state.throttle.release(throttle_key)
            state.request_log.leave(mailbox)
            if checked and status:
                state.contract.observe(method, path, status, b"".join(chunks), content_type)
            record.status = status or 500
            record.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            state.request_log.add(record)

    def _principal(self, scope: Scope, headers: Headers) -> Principal | None:
        """Verify the bearer token once; `require_principal` reuses it from request.state."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            principal: Principal = self.state.token_verifier.verify(token.strip())
        except InvalidToken:
            return None
        request_state: dict[str, Any] = scope.setdefault("state", {})
        request_state["principal"] = principal
        return principal

    def _mailbox(self, path: str, principal: Principal | None) -> str | None:
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "v1.0":
            return None
        if parts[1] == "users" and len(parts) >= 3:
            user = self.state.directory.find_user(parts[2])
            return user.id if user else parts[2]
        if principal is not None and parts[1] in ("me", "subscriptions"):
            return principal.user_id
        return None
