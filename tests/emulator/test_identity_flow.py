"""Authorization code + PKCE and refresh grants, driven over HTTP like a browser + app would."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import httpx
import jwt

from emulators.msgraph.state import EmulatorState
from tests.emulator.conftest import REDIRECT_URI, Seed, pkce_pair, redirect_params, sign_in

SCOPES = "Calendars.ReadWrite offline_access openid profile email"


def _authorize_params(seed: Seed, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "client_id": seed.app.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPES,
        "state": "xyz-state",
        "nonce": "n-0S6",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


async def _code(client: httpx.AsyncClient, seed: Seed, challenge: str, tenant: str = "") -> str:
    response = await sign_in(
        client, tenant or seed.tenant.id, _authorize_params(seed, challenge), account=seed.ann.id
    )
    params = redirect_params(response)
    assert params["state"] == "xyz-state"
    return params["code"]


def _redeem(seed: Seed, code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "client_id": seed.app.client_id,
        "client_secret": seed.app.client_secret,
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
    }


async def test_discovery_and_jwks(client: httpx.AsyncClient, seed: Seed) -> None:
    config = (await client.get("/contoso.com/v2.0/.well-known/openid-configuration")).json()
    assert config["issuer"] == f"https://emulator.test/{seed.tenant.id}/v2.0"
    assert config["token_endpoint"].endswith(f"/{seed.tenant.id}/oauth2/v2.0/token")
    common = (await client.get("/common/v2.0/.well-known/openid-configuration")).json()
    assert common["issuer"] == "https://emulator.test/{tenantid}/v2.0"
    keys = (await client.get("/common/discovery/v2.0/keys")).json()["keys"]
    assert keys[0]["kty"] == "RSA"
    unknown = await client.get("/nowhere.example/v2.0/.well-known/openid-configuration")
    assert unknown.status_code == 400
    assert unknown.json()["error_codes"] == [90002]


async def test_code_flow_with_pkce_issues_tokens(
    client: httpx.AsyncClient, seed: Seed, state: EmulatorState
) -> None:
    verifier, challenge = pkce_pair()
    code = await _code(client, seed, challenge)
    response = await client.post(
        f"/{seed.tenant.id}/oauth2/v2.0/token", data=_redeem(seed, code, verifier)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert set(body["scope"].split()) >= {"Calendars.ReadWrite"}
    assert body["expires_in"] == 3600 and body["ext_expires_in"] == 3600
    assert body["refresh_token"]
    principal = state.token_verifier.verify(body["access_token"])
    assert principal.user_id == seed.ann.id and principal.client_id == seed.app.client_id
    assert principal.scopes == {"Calendars.ReadWrite"}
    jwk = (await client.get(f"/{seed.tenant.id}/discovery/v2.0/keys")).json()["keys"][0]
    key = jwt.PyJWK(jwk)
    id_claims = jwt.decode(
        body["id_token"], key.key, algorithms=["RS256"], audience=seed.app.client_id
    )
    assert id_claims["nonce"] == "n-0S6"
    assert id_claims["preferred_username"] == "ann@contoso.com"
    assert id_claims["tid"] == seed.tenant.id and id_claims["oid"] == seed.ann.id
    assert id_claims["iss"] == f"https://emulator.test/{seed.tenant.id}/v2.0"
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info == {"uid": seed.ann.id, "utid": seed.tenant.id}


async def test_wrong_verifier_and_code_reuse_are_rejected(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    verifier, challenge = pkce_pair()
    code = await _code(client, seed, challenge)
    bad = await client.post(
        f"/{seed.tenant.id}/oauth2/v2.0/token", data=_redeem(seed, code, verifier + "x")
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_grant"
    assert bad.json()["error_codes"] == [501481]
    code = await _code(client, seed, challenge)
    ok = await client.post(
        f"/{seed.tenant.id}/oauth2/v2.0/token", data=_redeem(seed, code, verifier)
    )
    assert ok.status_code == 200
    again = await client.post(
        f"/{seed.tenant.id}/oauth2/v2.0/token", data=_redeem(seed, code, verifier)
    )
    body = again.json()
    assert again.status_code == 400 and body["error"] == "invalid_grant"
    assert body["error_codes"] == [54005]
    for field in ("error_description", "timestamp", "trace_id", "correlation_id"):
        assert body[field]
    assert body["error_description"].startswith("AADSTS54005:")


async def test_expired_code_and_wrong_redirect(
    client: httpx.AsyncClient, seed: Seed, state: EmulatorState
) -> None:
    verifier, challenge = pkce_pair()
    code = await _code(client, seed, challenge)
    state.clock.advance(timedelta(minutes=11))
    expired = await client.post(
        f"/{seed.tenant.id}/oauth2/v2.0/token", data=_redeem(seed, code, verifier)
    )
    assert expired.json()["error_codes"] == [70008]
    code = await _code(client, seed, challenge)
    form = {**_redeem(seed, code, verifier), "redirect_uri": "https://evil.test/cb"}
    mismatch = await client.post(f"/{seed.tenant.id}/oauth2/v2.0/token", data=form)
    assert mismatch.json()["error"] == "invalid_grant"


async def test_refresh_rotates_and_revocation(
    client: httpx.AsyncClient, seed: Seed, state: EmulatorState
) -> None:
    verifier, challenge = pkce_pair()
    code = await _code(client, seed, challenge)
    first = (
        await client.post(
            f"/{seed.tenant.id}/oauth2/v2.0/token", data=_redeem(seed, code, verifier)
        )
    ).json()
    refresh = {
        "grant_type": "refresh_token",
        "client_id": seed.app.client_id,
        "client_secret": seed.app.client_secret,
        "refresh_token": first["refresh_token"],
        "scope": "Calendars.ReadWrite offline_access openid",
    }
    second = await client.post(f"/{seed.tenant.id}/oauth2/v2.0/token", data=refresh)
    assert second.status_code == 200, second.text
    rotated = second.json()["refresh_token"]
    assert rotated != first["refresh_token"]
    reused = await client.post(f"/{seed.tenant.id}/oauth2/v2.0/token", data=refresh)
    assert reused.json()["error"] == "invalid_grant"
    assert reused.json()["error_codes"] == [50173]
    revoked = await client.post(f"/_emulator/users/{seed.ann.id}/revoke-refresh-tokens")
    assert revoked.status_code == 200 and revoked.json()["revoked"] == 1
    after = await client.post(
        f"/{seed.tenant.id}/oauth2/v2.0/token", data={**refresh, "refresh_token": rotated}
    )
    assert after.json()["error"] == "invalid_grant"
    assert "AADSTS50173" in after.json()["error_description"]


async def test_refresh_token_expires(
    client: httpx.AsyncClient, seed: Seed, state: EmulatorState
) -> None:
    verifier, challenge = pkce_pair()
    code = await _code(client, seed, challenge)
    first = (
        await client.post(
            f"/{seed.tenant.id}/oauth2/v2.0/token", data=_redeem(seed, code, verifier)
        )
    ).json()
    state.clock.advance(timedelta(days=91))
    response = await client.post(
        f"/{seed.tenant.id}/oauth2/v2.0/token",
        data={
            "grant_type": "refresh_token",
            "client_id": seed.app.client_id,
            "client_secret": seed.app.client_secret,
            "refresh_token": first["refresh_token"],
        },
    )
    assert response.json()["error"] == "invalid_grant"
    assert response.json()["error_codes"] == [700082]


async def test_no_refresh_token_without_offline_access(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    verifier, challenge = pkce_pair()
    params = {**_authorize_params(seed, challenge), "scope": "Calendars.Read openid"}
    response = await sign_in(client, seed.tenant.id, params, account=seed.ann.id)
    code = redirect_params(response)["code"]
    body = (
        await client.post(
            f"/{seed.tenant.id}/oauth2/v2.0/token", data=_redeem(seed, code, verifier)
        )
    ).json()
    assert "refresh_token" not in body
    assert body["scope"].split()[0] == "Calendars.Read"
