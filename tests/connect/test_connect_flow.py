"""Connect and disconnect, end to end: the real ingress, MSAL unmodified, the emulator's
sign-in page, real Kafka and the real MongoDB server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import msal
import pytest
from aiokafka import AIOKafkaConsumer
from bson import encode
from pymongo import AsyncMongoClient

from emulators.msgraph.directory import CONSUMERS_TENANT_ID, TenantPolicy
from shared.contracts.connections import connection_id_for
from shared.contracts.topics import AUDIT, CONNECTIONS
from shared.credentials.cipher import TokenCipher
from shared.credentials.vault import TokenVault
from shared.graph.errors import ReauthorizationRequired
from shared.identity.token_source import VaultTokenSource
from shared.infra.endpoints import InfraEndpoints
from shared.settings import Settings
from tests.fixtures.connect import (
    RETURN_URL,
    SERVICE_TOKEN,
    Cloud,
    connect_user,
    connected_settings,
    seed_cloud,
    with_app,
)
from tests.fixtures.emulator import RunningEmulator, running_emulator
from tests.fixtures.services import build, create_topics, free_port, running

pytestmark = pytest.mark.integration


@dataclass
class World:
    emulator: RunningEmulator
    settings: Settings
    cloud: Cloud
    mongo: AsyncMongoClient[dict[str, Any]]

    @property
    def db(self) -> Any:
        return self.mongo[self.settings.mongodb_database]

    @property
    def ingress(self) -> str:
        return f"http://127.0.0.1:{self.settings.ingress_port}"

    def vault(self) -> TokenVault:
        return TokenVault(self.db, TokenCipher.from_settings(self.settings))


@pytest.fixture
async def world(infra: InfraEndpoints) -> AsyncIterator[World]:
    async with running_emulator() as emulator:
        settings = connected_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri, emulator)
        cloud = seed_cloud(emulator, settings.oauth_redirect_uri)
        settings = with_app(settings, cloud)
        await create_topics(settings, partitions=1)
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
        try:
            async with running(build("ingress", settings)):
                yield World(emulator, settings, cloud, mongo)
        finally:
            await mongo.drop_database(settings.mongodb_database)
            await mongo.close()


async def registry_doc(world: World, user_id: str) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await world.db.connection_registry.find_one(
        {"_id": connection_id_for(user_id)}
    )
    return doc


async def test_connect_stores_tokens_encrypted_and_publishes_no_secret(world: World) -> None:
    outcome = await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    assert outcome.status == "connected"
    assert outcome.location.startswith(
        "https://app.smvue.test/settings/integrations?status=connected"
    )

    record = await registry_doc(world, "ann")
    assert record is not None
    assert record["state"] == "connected" and record["can_write"] is True
    assert record["account"]["user_principal_name"] == world.cloud.manager.mail
    assert record["account"]["kind"] == "work"
    assert "Calendars.ReadWrite" in record["granted_scopes"]

    entry = await world.vault().load(connection_id_for("ann"))
    assert entry is not None
    secrets = _token_secrets(entry.token_cache)
    assert len(secrets) >= 2  # an access token and a refresh token at least

    dump = b""
    for name in await world.db.list_collection_names():
        async for doc in world.db[name].find():
            dump += encode(doc)
    records = await _topic_values(world.settings, [CONNECTIONS, AUDIT])
    assert records, "the connection and its audit record were published"
    for secret in secrets:
        assert secret.encode() not in dump
        assert all(secret.encode() not in value for value in records)
    assert any(b'"connection.connected"' in value for value in records)
    assert any(b'"connection.connect"' in value for value in records)


async def test_tokens_refresh_and_the_rotated_refresh_token_is_stored(world: World) -> None:
    await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    source = VaultTokenSource(world.vault(), world.settings)
    cid = connection_id_for("ann")
    first = await source.access_token(cid)
    before = await world.vault().load(cid)
    # MSAL judges expiry by the real clock: force the refresh it would do an hour later.
    second = await source.access_token(cid, force_refresh=True)
    after = await world.vault().load(cid)
    assert second != first
    assert before is not None and after is not None
    assert after.version > before.version
    assert _refresh_tokens(after.token_cache) != _refresh_tokens(before.token_cache)
    # The new access token works against Graph.
    async with world.emulator.client() as graph:
        calendar = await graph.get(
            "/v1.0/me/calendar", headers={"Authorization": f"Bearer {second}"}
        )
    assert calendar.json()["owner"]["address"] == world.cloud.manager.mail


async def test_revoked_refresh_token_means_reauthorization_required(world: World) -> None:
    await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    world.emulator.state.identity.revoke_refresh_tokens(world.cloud.manager.id)
    source = VaultTokenSource(world.vault(), world.settings)
    with pytest.raises(ReauthorizationRequired):
        await source.access_token(connection_id_for("ann"), force_refresh=True)


@pytest.mark.parametrize(
    ("policy", "action", "code", "message"),
    [
        (
            TenantPolicy(admin_consent_required=True),
            "accept",
            "admin_approval_required",
            "Need admin approval",
        ),
        (
            TenantPolicy(conditional_access_block=True),
            "accept",
            "conditional_access_blocked",
            "Access blocked by Conditional Access",
        ),
        (TenantPolicy(), "cancel", "authorization_failed", "Unable to authorize Outlook Calendar"),
        (
            TenantPolicy(grantable_scopes=["openid", "profile", "offline_access", "email"]),
            "accept",
            "insufficient_permissions",
            "Insufficient permissions to access Outlook Calendar",
        ),
    ],
)
async def test_each_error_reaches_the_return_url_and_leaves_no_half_connection(
    world: World, policy: TenantPolicy, action: str, code: str, message: str
) -> None:
    world.cloud.tenant.policy = policy
    outcome = await connect_user(
        world.emulator, world.settings, "ann", world.cloud.manager.mail, action=action
    )
    assert (outcome.status, outcome.code, outcome.message) == ("error", code, message)
    assert await world.vault().load(connection_id_for("ann")) is None
    record = await registry_doc(world, "ann")
    assert record is not None and record["state"] == "failed"
    assert record["last_error"]["code"] == code


async def test_read_only_grant_connects_without_write(world: World) -> None:
    world.cloud.tenant.policy = TenantPolicy(
        grantable_scopes=["Calendars.Read", "openid", "profile", "offline_access", "email"]
    )
    outcome = await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    assert outcome.status == "connected"
    record = await registry_doc(world, "ann")
    assert record is not None and record["can_write"] is False
    assert record["granted_scopes"] == sorted(record["granted_scopes"])
    assert "Calendars.ReadWrite" not in record["granted_scopes"]


async def test_reconnect_keeps_the_identity_and_a_failed_retry_keeps_the_connection(
    world: World,
) -> None:
    await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    first = await registry_doc(world, "ann")
    again = await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    assert again.status == "connected"
    second = await registry_doc(world, "ann")
    assert first is not None and second is not None
    assert first["_id"] == second["_id"] == connection_id_for("ann")
    assert second["version"] > first["version"]
    declined = await connect_user(
        world.emulator, world.settings, "ann", world.cloud.manager.mail, action="cancel"
    )
    assert declined.code == "authorization_failed"
    after = await registry_doc(world, "ann")
    assert after is not None and after["state"] == "connected"
    assert await world.vault().load(connection_id_for("ann")) is not None


async def test_a_personal_account_is_recorded_as_such(world: World) -> None:
    world.emulator.state.directory.add_user(CONSUMERS_TENANT_ID, "ann@outlook.test", "Ann (home)")
    outcome = await connect_user(world.emulator, world.settings, "ann", "ann@outlook.test")
    assert outcome.status == "connected"
    record = await registry_doc(world, "ann")
    assert record is not None and record["account"]["kind"] == "personal"


async def test_key_rotation_keeps_every_connection_usable(world: World) -> None:
    await connect_user(world.emulator, world.settings, "ann", world.cloud.manager.mail)
    world.emulator.state.directory.add_user(world.cloud.tenant.id, "cy@contoso.test", "Cy")
    await connect_user(world.emulator, world.settings, "cy", "cy@contoso.test")
    rotated_settings = world.settings.model_copy(
        update={
            "token_keys": {**world.settings.token_keys, "k2": _new_key()},
            "token_active_key_id": "k2",
        }
    )
    # A stray entry sealed under a key nobody has any more: reported, kept, not in the way.
    await world.db.credentials.insert_one(
        {"_id": "conn_lost", "key_id": "k0", "nonce": b"0" * 12, "ciphertext": b"x", "version": 1}
    )
    vault = TokenVault(world.db, TokenCipher.from_settings(rotated_settings))
    report = await vault.rotate()
    assert (report.rotated, report.unreadable, report.busy) == (2, ["conn_lost"], [])
    await world.db.credentials.delete_one({"_id": "conn_lost"})
    assert {d["key_id"] async for d in world.db.credentials.find()} == {"k2"}
    source = VaultTokenSource(vault, rotated_settings)
    for user in ("ann", "cy"):
        assert await source.access_token(connection_id_for(user))
    old_only = world.settings.model_copy(
        update={"token_keys": {"k1": world.settings.token_keys["k1"]}}
    )
    with pytest.raises(Exception, match="no key"):
        await TokenVault(world.db, TokenCipher.from_settings(old_only)).load(
            connection_id_for("ann")
        )


async def test_an_unreachable_identity_platform_is_a_503_not_a_crash(world: World) -> None:
    unreachable = world.settings.model_copy(
        update={"authority_host": f"https://127.0.0.1:{free_port()}", "ingress_port": free_port()}
    )
    async with (
        running(build("ingress", unreachable)),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{unreachable.ingress_port}",
            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        ) as api,
    ):
        answer = await api.post("/v1/connections/ann/authorize", json={"return_url": RETURN_URL})
    assert answer.status_code == 503
    assert "identity platform is unreachable" in answer.json()["detail"]
    assert await world.mongo[world.settings.mongodb_database].oauth_flows.count_documents({}) == 0


async def test_bad_input_gets_a_clear_4xx_and_stores_nothing(world: World) -> None:
    good = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    async with httpx.AsyncClient(base_url=world.ingress) as http:
        authorize = "/v1/connections/ann/authorize"
        body = {"return_url": "https://app.smvue.test/x"}
        assert (await http.post(authorize, json=body)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await http.post(authorize, json=body, headers=wrong)).status_code == 401
        bad_url = await http.post(authorize, json={"return_url": "http://evil.test/"}, headers=good)
        assert bad_url.status_code == 422 and "https" in bad_url.text
        malformed = await http.post(
            authorize, content=b"{not json", headers={**good, "Content-Type": "application/json"}
        )
        assert malformed.status_code == 422
        huge = await http.post(
            authorize, json={"return_url": "https://x/" + "a" * 400_000}, headers=good
        )
        assert huge.status_code == 413
        bad_user = await http.post("/v1/connections/a%20b/authorize", json=body, headers=good)
        assert bad_user.status_code == 422
        unknown = await http.post("/v1/connections/nobody/disconnect", headers=good)
        assert unknown.status_code == 404
        forged = await http.get("/oauth/outlook/callback", params={"state": "forged", "code": "x"})
        assert forged.status_code == 400 and "invalid" in forged.text
        missing = await http.get("/oauth/outlook/callback")
        assert missing.status_code == 400
    # A replayed callback (same state twice) is refused the second time.
    ingress_api = httpx.AsyncClient(base_url=world.ingress, headers=good)
    started = await ingress_api.post(authorize, json=body)
    await ingress_api.aclose()
    from tests.fixtures.connect import sign_in

    callback = await sign_in(
        world.emulator, started.json()["authorization_url"], world.cloud.manager.mail, "accept"
    )
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(callback)).status_code == 303
        replay = await browser.get(callback)
    assert replay.status_code == 400
    assert await world.db.oauth_flows.count_documents({}) == 0


def _token_secrets(cache_json: str) -> list[str]:
    cache = msal.SerializableTokenCache()
    cache.deserialize(cache_json)
    out = []
    for kind in ("AccessToken", "RefreshToken", "IdToken"):
        for item in cache.search(kind):
            out.append(str(item["secret"]))
    return out


def _refresh_tokens(cache_json: str) -> set[str]:
    cache = msal.SerializableTokenCache()
    cache.deserialize(cache_json)
    return {str(i["secret"]) for i in cache.search("RefreshToken")}


def _new_key() -> Any:
    import base64
    import os

    from pydantic import SecretStr

    return SecretStr(base64.b64encode(os.urandom(32)).decode())


async def _topic_values(settings: Settings, specs: list[Any]) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        *[settings.topic(s) for s in specs],
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        for _ in range(6):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                values += [r.value or b"" for r in records]
            if values and not batch:
                break
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return values
