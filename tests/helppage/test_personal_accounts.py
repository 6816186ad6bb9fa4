"""Outlook.com personal accounts connect with the demo's configuration, and every answer
of the identity platform on the callback brings the person back to SMVue with the help
page's words (issue 9 item 3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pymongo import AsyncMongoClient

from emulators.msgraph.directory import CONSUMERS_TENANT_ID
from services.ingress.connect.domain import error_from_authorize_redirect
from shared.contracts.connections import connection_id_for
from shared.contracts.user_errors import UserErrorCode
from shared.dev.demo_cloud import DemoCloud
from shared.dev.runner import service_env
from shared.infra.endpoints import InfraEndpoints
from shared.settings import Settings
from tests.fixtures.connect import (
    RETURN_URL,
    SERVICE_TOKEN,
    connect_user,
    connected_settings,
    seed_cloud,
    with_app,
)
from tests.fixtures.emulator import RunningEmulator, running_emulator
from tests.fixtures.services import build, create_topics, running

pytestmark = pytest.mark.integration

FALLBACK = "https://app.smvue.test/settings/integrations"


@pytest.fixture
async def demo_configured(
    infra: InfraEndpoints, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningEmulator, Settings]]:
    """The ingress with the authority `scripts/dev` gives the services."""
    monkeypatch.delenv("SMVUE_TENANT", raising=False)
    async with running_emulator() as emulator:
        settings = connected_settings(infra.kafka_bootstrap_servers, infra.mongodb_uri, emulator)
        cloud = seed_cloud(emulator, settings.oauth_redirect_uri)
        env = service_env(
            infra.kafka_bootstrap_servers,
            infra.mongodb_uri,
            emulator.base_url,
            DemoCloud(cloud.tenant.id, cloud.client_id, cloud.client_secret),
            Path(emulator.ca_bundle),
            ("k", "unused"),
            settings.ingress_port,
        )
        settings = with_app(settings, cloud).model_copy(
            update={
                "tenant": env["SMVUE_TENANT"],
                "msal_instance_discovery": env["SMVUE_MSAL_INSTANCE_DISCOVERY"] == "true",
                "oauth_fallback_return_url": FALLBACK,
            }
        )
        await create_topics(settings, partitions=1)
        async with running(build("ingress", settings)):
            yield emulator, settings


async def test_a_personal_account_connects_with_the_demo_configuration(
    demo_configured: tuple[RunningEmulator, Settings],
) -> None:
    emulator, settings = demo_configured
    assert settings.tenant == "common"
    emulator.state.directory.add_user(CONSUMERS_TENANT_ID, "ann@outlook.test", "Ann (home)")
    outcome = await connect_user(emulator, settings, "ann", "ann@outlook.test")
    assert outcome.status == "connected", outcome
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    try:
        record = await mongo[settings.mongodb_database].connection_registry.find_one(
            {"_id": connection_id_for("ann")}
        )
    finally:
        await mongo.close()
    assert record is not None and record["account"]["kind"] == "personal"
    assert record["account"]["tenant_id"] == CONSUMERS_TENANT_ID


async def _authorize(settings: Settings) -> dict[str, str]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.ingress_port}",
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
    ) as api:
        started = await api.post("/v1/connections/ann/authorize", json={"return_url": RETURN_URL})
    assert started.status_code == 200, started.text
    query = parse_qs(urlsplit(started.json()["authorization_url"]).query)
    return {k: v[0] for k, v in query.items()}


async def _callback(settings: Settings, params: dict[str, str]) -> dict[str, str]:
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(
            f"http://127.0.0.1:{settings.ingress_port}/oauth/outlook/callback", params=params
        )
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return {"to": location.split("?")[0], **query}


@pytest.mark.parametrize(
    ("error", "description", "code", "message"),
    [
        (
            "invalid_request",
            "AADSTS50020: User account 'ann@outlook.test' from identity provider 'live.com' "
            "does not exist in tenant 'Contoso'.",
            "authorization_failed",
            "Unable to authorize Outlook Calendar",
        ),
        (
            "access_denied",
            "AADSTS65004: User declined to consent to access the app.",
            "authorization_failed",
            "Unable to authorize Outlook Calendar",
        ),
        (
            "access_denied",
            "AADSTS90094: Contoso needs permission ... only an admin can grant.",
            "admin_approval_required",
            "Need admin approval",
        ),
        (
            "access_denied",
            "AADSTS53003: Access has been blocked by Conditional Access policies.",
            "conditional_access_blocked",
            "Access blocked by Conditional Access",
        ),
        (
            "server_error",
            "AADSTS90033: A transient error has occurred. Please try again.",
            "authorization_failed",
            "Unable to authorize Outlook Calendar",
        ),
    ],
)
async def test_every_identity_error_comes_back_to_smvue_in_the_help_pages_words(
    demo_configured: tuple[RunningEmulator, Settings],
    error: str,
    description: str,
    code: str,
    message: str,
) -> None:
    """As Microsoft redirects to the callback with `error` + `error_description`."""
    _, settings = demo_configured
    started = await _authorize(settings)
    back = await _callback(
        settings, {"state": started["state"], "error": error, "error_description": description}
    )
    assert (back["to"], back["status"], back["code"], back["message"]) == (
        RETURN_URL,
        "error",
        code,
        message,
    )


async def test_a_sign_in_answer_matching_nothing_still_returns_to_smvue(
    demo_configured: tuple[RunningEmulator, Settings],
) -> None:
    _, settings = demo_configured
    for params in (
        {"state": "expired-or-forged", "code": "x"},
        {"state": "expired-or-forged", "error": "access_denied"},
        {},
    ):
        back = await _callback(settings, params)
        assert (back["to"], back["status"], back["code"]) == (
            FALLBACK,
            "error",
            "authorization_failed",
        )


def test_error_codes_map_to_the_help_pages_errors() -> None:
    assert error_from_authorize_redirect("access_denied", "AADSTS50105: not assigned") == (
        UserErrorCode.ADMIN_APPROVAL_REQUIRED
    )
    assert error_from_authorize_redirect("interaction_required", "AADSTS53000: device") == (
        UserErrorCode.CONDITIONAL_ACCESS_BLOCKED
    )
    assert error_from_authorize_redirect("invalid_request", "AADSTS530033") == (
        UserErrorCode.CONDITIONAL_ACCESS_BLOCKED
    )
    assert error_from_authorize_redirect("invalid_grant", "AADSTS70008: expired code") == (
        UserErrorCode.AUTHORIZATION_FAILED
    )
