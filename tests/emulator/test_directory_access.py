"""`/me` and `/users/{id}` need a profile permission, and tenants don't see each other.

"Get user" (learn.microsoft.com/graph/api/user-get): User.Read is the least privileged
delegated permission; reading another user needs User.ReadBasic.All or more.
"""

from __future__ import annotations

import httpx

from emulators.msgraph.state import EmulatorState
from tests.emulator.calendar_fixtures import auth
from tests.emulator.conftest import Seed


async def test_me_needs_a_profile_permission(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    calendars_only = auth(state, seed.ann.id, "Calendars.ReadWrite")
    refused = await client.get("/v1.0/me", headers=calendars_only)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Authorization_RequestDenied"
    own = await client.get(f"/v1.0/users/{seed.ann.id}", headers=calendars_only)
    assert own.status_code == 403
    with_profile = auth(state, seed.ann.id, "Calendars.ReadWrite User.Read")
    me = await client.get("/v1.0/me", headers=with_profile)
    assert me.status_code == 200 and me.json()["id"] == seed.ann.id
    # The OpenID scopes are not Graph permissions: they never reach the access token.
    oidc = auth(state, seed.ann.id, "Calendars.ReadWrite openid profile email")
    assert (await client.get("/v1.0/me", headers=oidc)).status_code == 403


async def test_a_colleague_needs_a_directory_permission(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    user_read = auth(state, seed.ann.id, "User.Read")
    refused = await client.get(f"/v1.0/users/{seed.bob.id}", headers=user_read)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "Authorization_RequestDenied"
    directory = auth(state, seed.ann.id, "User.ReadBasic.All")
    bob = await client.get(f"/v1.0/users/{seed.bob.user_principal_name}", headers=directory)
    assert bob.status_code == 200 and bob.json()["id"] == seed.bob.id


async def test_another_tenants_users_do_not_exist(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    other = state.directory.add_tenant("Fabrikam", "fabrikam.com")
    eve = state.directory.add_user(other.id, "eve@fabrikam.com", "Eve Evans")
    everything = auth(state, seed.ann.id, "Directory.Read.All Calendars.ReadWrite")
    for path in (f"/v1.0/users/{eve.id}", "/v1.0/users/eve@fabrikam.com"):
        response = await client.get(path, headers=everything)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "Request_ResourceNotFound"
    calendar = await client.get(f"/v1.0/users/{eve.id}/calendar", headers=everything)
    assert calendar.status_code == 404
    colleague_calendar = await client.get(f"/v1.0/users/{seed.bob.id}/calendar", headers=everything)
    assert colleague_calendar.status_code == 403
