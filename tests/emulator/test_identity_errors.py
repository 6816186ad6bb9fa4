"""Every documented sign-in failure the emulator reproduces, as the app would see it."""

from __future__ import annotations

import httpx

from emulators.msgraph.directory import CONSUMERS_TENANT_ID, TenantPolicy
from emulators.msgraph.state import EmulatorState
from tests.emulator.conftest import REDIRECT_URI, Seed, pkce_pair, redirect_params, sign_in


def _params(seed: Seed, **extra: str) -> dict[str, str]:
    _, challenge = pkce_pair()
    return {
        "client_id": seed.app.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "Calendars.ReadWrite offline_access openid",
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def test_unknown_app_and_bad_redirect_show_an_error_page(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    path = f"/{seed.tenant.id}/oauth2/v2.0/authorize"
    unknown = await client.get(path, params=_params(seed, client_id="no-such-app"))
    assert unknown.status_code == 400 and "AADSTS700016" in unknown.text
    bad = await client.get(path, params=_params(seed, redirect_uri="https://evil.test/cb"))
    assert bad.status_code == 400 and "AADSTS50011" in bad.text
    tenant = await client.get("/nowhere.test/oauth2/v2.0/authorize", params=_params(seed))
    assert tenant.status_code == 400 and "AADSTS90002" in tenant.text


async def test_cancel_is_access_denied(client: httpx.AsyncClient, seed: Seed) -> None:
    response = await sign_in(
        client, seed.tenant.id, _params(seed), account=seed.ann.id, action="cancel"
    )
    params = redirect_params(response)
    assert params["error"] == "access_denied" and params["state"] == "st-1"
    assert params["error_description"].startswith("AADSTS65004:")


async def test_conditional_access_block(client: httpx.AsyncClient, seed: Seed) -> None:
    seed.tenant.policy = TenantPolicy(conditional_access_block=True)
    response = await sign_in(client, seed.tenant.id, _params(seed), account=seed.ann.id)
    params = redirect_params(response)
    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS53003:")


async def test_admin_consent_required(client: httpx.AsyncClient, seed: Seed) -> None:
    seed.tenant.policy = TenantPolicy(admin_consent_required=True)
    response = await sign_in(client, "organizations", _params(seed), account=seed.ann.id)
    params = redirect_params(response)
    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("AADSTS90094:")
    silent = await client.get(
        f"/{seed.tenant.id}/oauth2/v2.0/authorize", params=_params(seed, prompt="none")
    )
    params = redirect_params(silent)
    assert params["error"] == "consent_required"
    assert params["error_description"].startswith("AADSTS65001:")


async def test_partial_grant_shows_in_scope(client: httpx.AsyncClient, seed: Seed) -> None:
    seed.tenant.policy = TenantPolicy(grantable_scopes=["Calendars.Read", "offline_access"])
    verifier, challenge = pkce_pair()
    params = _params(seed, code_challenge=challenge)
    code = redirect_params(await sign_in(client, seed.tenant.id, params, account=seed.ann.id))
    token = await client.post(
        f"/{seed.tenant.id}/oauth2/v2.0/token",
        data={
            "grant_type": "authorization_code",
            "client_id": seed.app.client_id,
            "client_secret": seed.app.client_secret,
            "code": code["code"],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
    )
    body = token.json()
    assert "Calendars.ReadWrite" not in body["scope"].split()
    assert "refresh_token" in body


async def test_token_endpoint_client_errors(client: httpx.AsyncClient, seed: Seed) -> None:
    url = f"/{seed.tenant.id}/oauth2/v2.0/token"
    form = {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT_URI}
    secret = await client.post(
        url, data={**form, "client_id": seed.app.client_id, "client_secret": "wrong"}
    )
    assert secret.status_code == 401 and secret.json()["error"] == "invalid_client"
    assert secret.json()["error_codes"] == [7000215]
    unknown = await client.post(url, data={**form, "client_id": "nope", "client_secret": "x"})
    assert unknown.json()["error_codes"] == [700016]
    grant = await client.post(
        url,
        data={
            "grant_type": "password",
            "client_id": seed.app.client_id,
            "client_secret": seed.app.client_secret,
        },
    )
    assert grant.json()["error"] == "unsupported_grant_type"
    bogus = await client.post(
        url,
        data={**form, "client_id": seed.app.client_id, "client_secret": seed.app.client_secret},
    )
    assert bogus.json()["error"] == "invalid_grant"


async def test_personal_account_signs_in_through_consumers(
    client: httpx.AsyncClient, seed: Seed, state: EmulatorState
) -> None:
    created = await client.post(
        "/_emulator/users",
        json={"tenant": "consumers", "email": "carol@outlook.com", "display_name": "Carol"},
    )
    carol = created.json()
    assert carol["tenant_id"] == CONSUMERS_TENANT_ID
    page = await client.get("/consumers/oauth2/v2.0/authorize", params=_params(seed))
    assert "carol@outlook.com" in page.text and "ann@contoso.com" not in page.text
    response = await sign_in(client, "consumers", _params(seed), account=carol["id"])
    assert "code" in redirect_params(response)
    org = await sign_in(client, "organizations", _params(seed), account=seed.ann.id)
    assert "code" in redirect_params(org)
