"""MSAL Python, unmodified, against the real emulator server over HTTPS on loopback.

Constructor args that work: authority=f"{base_url}/{tenant}", client_credential=secret,
instance_discovery=False (or validate_authority=False), and either verify=<CA bundle path> or
http_client=<requests.Session with .verify = CA bundle>. Beware: requests lets the
REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE environment variables override `verify`, so when those are
set, pass an http_client whose `trust_env` is False (done here).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msal
import requests

from emulators.msgraph.state import EmulatorState
from tests.fixtures.emulator import running_emulator

REDIRECT = "http://localhost:8765/auth/callback"
SCOPES = ["Calendars.ReadWrite"]


def _sign_in(auth_uri: str, ca_bundle: str, account: str) -> dict[str, str]:
    """Follow the sign-in page with a plain HTTP client, as a browser would."""
    context = ssl.create_default_context(cafile=ca_bundle)
    with httpx.Client(verify=context) as http:
        page = http.get(auth_uri)
        assert page.status_code == 200 and "Accept" in page.text
        params = {k: v[0] for k, v in parse_qs(urlsplit(auth_uri).query).items()}
        action = auth_uri.split("?", 1)[0]
        answer = http.post(action, data={**params, "account": account, "action": "accept"})
        assert answer.status_code == 302, answer.text
        location = answer.headers["location"]
        assert location.startswith(REDIRECT)
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def _msal_round_trip(base_url: str, ca_bundle: str, tenant_id: str, app: Any, user: Any) -> None:
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over verify
    session.verify = ca_bundle
    try:
        _with_session(base_url, session, tenant_id, app, user)
    finally:
        session.close()  # lets the server shut down without waiting on keep-alive sockets


def _with_session(
    base_url: str, session: requests.Session, tenant_id: str, app: Any, user: Any
) -> None:
    ca_bundle = str(session.verify)
    client = msal.ConfidentialClientApplication(
        app.client_id,
        client_credential=app.client_secret,
        authority=f"{base_url}/{tenant_id}",
        instance_discovery=False,
        http_client=session,
    )
    flow = client.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT, login_hint=user.mail)
    reply = _sign_in(flow["auth_uri"], ca_bundle, user.id)
    result = client.acquire_token_by_auth_code_flow(flow, reply)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == user.user_principal_name
    assert "Calendars.ReadWrite" in result["scope"]
    refreshed = client.acquire_token_by_refresh_token(result["refresh_token"], SCOPES)
    assert "access_token" in refreshed, refreshed
    accounts = client.get_accounts()
    assert accounts and accounts[0]["username"] == user.user_principal_name
    silent = client.acquire_token_silent(SCOPES, account=accounts[0], force_refresh=True)
    assert silent is not None and "access_token" in silent, silent
    # A tampered verifier is refused by the token endpoint (PKCE S256).
    flow = client.initiate_auth_code_flow(SCOPES, redirect_uri=REDIRECT)
    reply = _sign_in(flow["auth_uri"], ca_bundle, user.id)
    flow["code_verifier"] = flow["code_verifier"][:-1] + (
        "A" if flow["code_verifier"][-1] != "A" else "B"
    )
    refused = client.acquire_token_by_auth_code_flow(flow, reply)
    assert refused.get("error") == "invalid_grant", refused


async def test_msal_code_flow_pkce_and_refresh_over_https() -> None:
    state = EmulatorState()
    tenant = state.directory.add_tenant("Fabrikam", "fabrikam.com")
    user = state.directory.add_user(tenant.id, "Dana@fabrikam.com", "Dana Diaz")
    app = state.identity.register_app(redirect_uris=[REDIRECT])
    async with running_emulator(state) as emulator:
        await asyncio.to_thread(
            _msal_round_trip, emulator.base_url, emulator.ca_bundle, tenant.id, app, user
        )
        async with emulator.client() as http:
            token = (await http.post("/_emulator/tokens", json={"user": user.id})).json()
            listed = await http.get(
                "/v1.0/subscriptions",
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )
            assert listed.status_code == 200
