"""Shared fixtures for emulator tests: an in-process emulator reached through httpx's ASGI
transport, seeded with one tenant, two users and one app registration."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from emulators.msgraph.app import create_app
from emulators.msgraph.directory import Tenant, User
from emulators.msgraph.identity.models import AppRegistration
from emulators.msgraph.state import EmulatorState

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
