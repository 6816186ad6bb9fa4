"""`smvue-sync dev`: the whole system on one machine, with its logs multiplexed.

Order: local Kafka + MongoDB → topics → the Graph/identity emulator (HTTPS, own CA,
state kept in `.smvue/emulator-state.json`) seeded with a demo tenant → the four services
as separate processes, configured exactly as production would be, only pointed at the
emulator. Ctrl-C stops the services, the emulator and the infrastructure, in that order.

A restarted demo keeps everything or starts clean, never half (issue 9): the emulator saves
its state whenever it is stopped (SIGTERM from this runner on Ctrl-C, or SIGINT) and
reloads it (the runner removes the file once it is loaded, so only a stop writes one); and
when there is no saved state (the first run, a deleted file, an emulator that was
killed), the demo's MongoDB database is dropped before the services start, so no
connection points at tokens the emulator no longer knows.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import ssl
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from shared.dev.demo_cloud import DEMO_PERSONAL, DEMO_USERS, DemoCloud, ensure_demo_cloud
from shared.dev.processes import Child, ProcessGroup
from shared.infra.local import LocalInfra
from shared.infra.paths import smvue_home
from shared.messaging.admin import create_topics
from shared.settings import Settings

SERVICES = ("projector", "syncer", "writer", "ingress")
EMULATOR_PORT = 8600
DEV_SERVICE_TOKEN = "dev-service-token"  # noqa: S105 (local demo only)


def _cli() -> list[str]:
    return [sys.executable, "-c", "from shared.cli import main; main()"]


def _dev_token_key(home: Path) -> tuple[str, str]:
    """A token-encryption key for the demo, generated once and kept under .smvue/."""
    path = home / "dev-token-key.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        path.write_text(json.dumps({"id": "dev-1", "key": key}))
        path.chmod(0o600)
    saved = json.loads(path.read_text())
    return str(saved["id"]), str(saved["key"])


async def _wait_for(url: str, verify: ssl.SSLContext | bool) -> None:
    """Polls until the URL answers; callers bound it with asyncio.timeout."""
    async with httpx.AsyncClient(verify=verify) as client:
        while True:
            try:
                if (await client.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)


async def run_dev(keep_infra: bool = False) -> int:
    home = smvue_home()
    infra = LocalInfra()
    print("starting Kafka + MongoDB…", flush=True)
    endpoints = await asyncio.to_thread(infra.up)
    base = Settings(
        kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
        mongodb_uri=endpoints.mongodb_uri,
    )
    created = await create_topics(base)
    print(f"topics ready ({len(created)} created)", flush=True)
    state_file = home / "emulator-state.json"
    if await start_clean_without_state(state_file, base):
        print(f"no saved emulator state: starting clean ({base.mongodb_database} dropped)")

    group = ProcessGroup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        ca_bundle = home / "emulator-ca.pem"
        ca_bundle.unlink(missing_ok=True)  # the emulator writes a new CA each start: wait for it
        await group.start(
            Child(
                "emulator",
                [
                    *_cli(),
                    "emulator",
                    "--port",
                    str(EMULATOR_PORT),
                    "--state",
                    str(state_file),
                    "--ca-out",
                    str(ca_bundle),
                ],
            )
        )
        emulator_url = f"https://127.0.0.1:{EMULATOR_PORT}"
        for _ in range(300):
            if ca_bundle.exists():
                break
            await asyncio.sleep(0.1)
        tls = ssl.create_default_context(cafile=str(ca_bundle))
        async with asyncio.timeout(60):
            await _wait_for(f"{emulator_url}/_emulator/clock", tls)
        # Loaded: the file is stale from now on. The emulator writes it again when stopped;
        # if it never is (killed), the next start finds none and starts clean.
        await asyncio.to_thread(state_file.unlink, missing_ok=True)
        redirect_uri = f"http://127.0.0.1:{base.ingress_port}/oauth/outlook/callback"
        async with httpx.AsyncClient(base_url=emulator_url, verify=tls) as control:
            cloud = await ensure_demo_cloud(control, redirect_uri)

        env = service_env(
            endpoints.kafka_bootstrap_servers,
            endpoints.mongodb_uri,
            emulator_url,
            cloud,
            ca_bundle,
            _dev_token_key(home),
            base.ingress_port,
        )
        for name in SERVICES:
            await group.start(Child(name, [*_cli(), "run", name], env))
        await _seed_demo_roster(f"http://127.0.0.1:{base.ingress_port}")
        _banner(base, emulator_url)
        stopped = asyncio.create_task(stop.wait())
        exited = asyncio.create_task(group.wait_any())
        done, _ = await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited in done:
            child = exited.result()
            print(f"{child.name} exited; stopping everything", flush=True)
            return 1
        return 0
    finally:
        print("stopping…", flush=True)
        await group.stop()
        if not keep_infra:
            await asyncio.to_thread(infra.down)
        print("stopped", flush=True)


async def start_clean_without_state(state_file: Path, settings: Settings) -> bool:
    """Without the emulator's saved state, the services' data is dropped too (True then,
    if there was any): the emulator will know none of the connections' tokens."""
    if await asyncio.to_thread(state_file.exists):
        return False
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    try:
        had_data = settings.mongodb_database in await mongo.list_database_names()
        if had_data:
            await mongo.drop_database(settings.mongodb_database)
        return had_data
    finally:
        await mongo.close()


def service_env(
    kafka: str,
    mongodb_uri: str,
    emulator_url: str,
    cloud: DemoCloud,
    ca_bundle: Path,
    token_key: tuple[str, str],
    ingress_port: int,
) -> dict[str, str]:
    """The services' environment in the demo: production's settings, pointed at the
    emulator. The authority is `common` (work, school and personal Outlook.com accounts, as
    the help page promises) unless SMVUE_TENANT says otherwise (e.g. `organizations`)."""
    key_id, key = token_key
    ingress = f"http://127.0.0.1:{ingress_port}"
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "MONGODB_URI": mongodb_uri,
        "SMVUE_GRAPH_BASE_URL": f"{emulator_url}/v1.0",
        "SMVUE_AUTHORITY_HOST": emulator_url,
        "SMVUE_TENANT": os.environ.get("SMVUE_TENANT", "common"),
        "SMVUE_CLIENT_ID": cloud.client_id,
        "SMVUE_CLIENT_SECRET": cloud.client_secret,
        "SMVUE_CA_BUNDLE": str(ca_bundle),
        # MSAL validates authorities against Microsoft's cloud list; the local emulator
        # is not on it (the real cloud keeps this on).
        "SMVUE_MSAL_INSTANCE_DISCOVERY": "false",
        "SMVUE_OAUTH_REDIRECT_URI": f"{ingress}/oauth/outlook/callback",
        "SMVUE_OAUTH_FALLBACK_RETURN_URL": f"{ingress}/healthz",
        "SMVUE_PUBLIC_BASE_URL": ingress,
        "SMVUE_SERVICE_TOKENS": json.dumps([DEV_SERVICE_TOKEN]),
        "SMVUE_TOKEN_KEYS": json.dumps({key_id: key}),
        "SMVUE_TOKEN_ACTIVE_KEY_ID": key_id,
        "SMVUE_LOG_FORMAT": os.environ.get("SMVUE_LOG_FORMAT", "console"),
    }


async def _seed_demo_roster(ingress: str) -> None:
    """Ada's team (Ben and Cy), through the ingress's roster API as the backend would."""
    members = [
        {"member_id": email.split(".")[0], "email": email, "display_name": name}
        for email, name in DEMO_USERS[1:]
    ]
    headers = {"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"}
    async with httpx.AsyncClient(base_url=ingress, headers=headers) as api:
        async with asyncio.timeout(60):
            while True:
                try:
                    answer = await api.put(
                        "/v1/managers/ada/roster", json={"members": members, "version": 1}
                    )
                    if answer.status_code == 202:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.5)


def _banner(settings: Settings, emulator_url: str) -> None:
    manager = DEMO_USERS[0][0]
    ingress = f"http://127.0.0.1:{settings.ingress_port}"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    command_id = f"demo-{secrets.token_hex(4)}"
    print(
        "\n".join(
            [
                "",
                "SMVue Outlook Calendar Sync is running.",
                f"  ingress (commands, OAuth, webhooks): {ingress}   /docs for the API",
                f"  projector (read model API):          http://127.0.0.1:{settings.projector_port}",
                f"  Graph + identity emulator:           {emulator_url}",
                f"  service token for the APIs:          {DEV_SERVICE_TOKEN}",
                "",
                "Connect the demo manager's calendar (then open the printed URL in a browser,",
                f"pick {manager} — or the personal Outlook.com account {DEMO_PERSONAL[0]} —",
                "and Accept):",
                f"  curl -s -X POST -H 'Authorization: Bearer {DEV_SERVICE_TOKEN}' \\",
                "       -H 'Content-Type: application/json' \\",
                f'       -d \'{{"return_url": "{ingress}/healthz"}}\' \\',
                f"       {ingress}/v1/connections/ada/authorize",
                "",
                "Then schedule a 1:1 with Ben from SMVue (it lands in Ada's Outlook calendar):",
                f"  curl -s -X POST -H 'Authorization: Bearer {DEV_SERVICE_TOKEN}' \\",
                "       -H 'Content-Type: application/json' \\",
                f'       -d \'{{"command_id": "{command_id}", "manager_id": "ada", '
                '"member_name": "Ben Member", "member_email": "ben.member@contoso.example", '
                f'"start": "{tomorrow}T10:00:00", "time_zone": "Europe/London", '
                '"meeting_type": "30min", "add_teams_link": true, '
                '"prep_url": "https://app.smvue.example/prep/1"}\' \\',
                f"       {ingress}/v1/commands/schedule",
                f"  curl -s -H 'Authorization: Bearer {DEV_SERVICE_TOKEN}' "
                f"{ingress}/v1/commands/{command_id}",
                f"  curl -s -H 'Authorization: Bearer {DEV_SERVICE_TOKEN}' "
                f"http://127.0.0.1:{settings.projector_port}/v1/managers/ada/one-on-ones",
                "",
                "Ctrl-C stops everything.",
                "",
            ]
        ),
        flush=True,
    )
