"""Shared fixtures for emulator tests: an in-process emulator reached through httpx's ASGI
transport, seeded with one tenant, two users and one app registration."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from emulators.msgraph.app import create_app
from emulators.msgraph.directory import Tenant, User
from emulators.msgraph.identity.models import AppRegistration
from emulators.msgraph.state import EmulatorState
from tests.fixtures.emulator import assert_contract_kept
from tests.fixtures.services import free_port

BASE_URL = "https://emulator.test"
REDIRECT_URI = "https://app.smvue.test/auth/callback"


@dataclass
class Seed:
    tenant: Tenant
    ann: User
    bob: User
    app: AppRegistration


@pytest.fixture
def state() -> EmulatorState:
    return EmulatorState(base_url=BASE_URL)


@pytest.fixture
def seed(state: EmulatorState) -> Seed:
    tenant = state.directory.add_tenant("Contoso", "contoso.com")
    ann = state.directory.add_user(tenant.id, "ann@contoso.com", "Ann Archer")
    bob = state.directory.add_user(tenant.id, "bob@contoso.com", "Bob Baker")
    app = state.identity.register_app(redirect_uris=[REDIRECT_URI], display_name="SMVue")
    return Seed(tenant=tenant, ann=ann, bob=bob, app=app)


@pytest.fixture
async def client(state: EmulatorState, seed: Seed) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http
    await state.subscriptions.dispatcher.aclose()
    assert_contract_kept(state)  # every answer the test received matched the CSDL types


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query of a 302 back to the app, flattened."""
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {k: v[0] for k, v in query.items()}


async def sign_in(
    http: httpx.AsyncClient,
    tenant: str,
    params: dict[str, str],
    *,
    account: str,
    action: str = "accept",
) -> httpx.Response:
    """Drive the sign-in page like a browser: GET it, then POST the form's fields."""
    page = await http.get(f"/{tenant}/oauth2/v2.0/authorize", params=params)
    assert page.status_code == 200, page.text
    form = {**params, "account": account, "action": action}
    return await http.post(f"/{tenant}/oauth2/v2.0/authorize", data=form)


# --- a real webhook receiver on loopback ------------------------------------------------------


class Receiver:
    """A tiny HTTP server that plays the app's webhook endpoint.

    `validation`: "echo" (correct), "wrong" (echo something else), "slow" (answer late).
    `statuses`: answers for notification POSTs, in order (then 202).
    """

    def __init__(self) -> None:
        self.batches: list[dict[str, object]] = []
        self.paths: list[str] = []
        self.validations: list[str] = []
        self.validation = "echo"
        self.slow_seconds = 2.0
        self.statuses: list[int] = []
        self.base_url = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        token = request.query_params.get("validationToken")
        if token is not None:
            self.validations.append(request.url.path)
            if self.validation == "slow":
                await asyncio.sleep(self.slow_seconds)
            text = token if self.validation != "wrong" else "not-the-token"
            await PlainTextResponse(text)(scope, receive, send)
            return
        self.batches.append(await request.json())
        self.paths.append(request.url.path)
        status = self.statuses.pop(0) if self.statuses else 202
        await Response(status_code=status)(scope, receive, send)

    def items(self, path: str | None = None) -> list[dict[str, object]]:
        return [
            item
            for batch, p in zip(self.batches, self.paths, strict=True)
            if path is None or p == path
            for item in batch["value"]  # type: ignore[attr-defined]
        ]

    async def wait_for(self, count: int, path: str | None = None, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while len(self.items(path)) < count:
                await asyncio.sleep(0.01)


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    target = Receiver()
    port = free_port()
    target.base_url = f"http://127.0.0.1:{port}"
    server = _QuietServer(
        uvicorn.Config(
            target, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield target
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


@pytest.fixture
def fast_delivery(state: EmulatorState) -> EmulatorState:
    """Scaled-down retry/backoff so delivery tests finish in well under a second."""
    settings = state.subscriptions.settings
    settings.batch_window_seconds = 0.05
    settings.retry_base_seconds = 0.05
    settings.retry_max_attempts = 3
    settings.validation_timeout_seconds = 0.5
    return state


def bearer(state: EmulatorState, user: User, client_id: str | None = None) -> dict[str, str]:
    token = state.identity.mint_access_token(
        user.id, ["Calendars.ReadWrite"], client_id or "5c7b2f60-3f4e-4b7a-9a55-e1a0c0de0001"
    )
    return {"Authorization": f"Bearer {token}"}
