"""The demo survives its own restart (issue 9 item 7): the emulator, a real process started
and stopped the way `smvue-sync dev` does it (its ProcessGroup: SIGTERM on Ctrl-C) or
interrupted (SIGINT), saves its state and comes back with it — tenants, users, the app, a
user's calendar and the signing key (a token minted before still works). With no saved
state, the runner drops the demo's MongoDB data: all or nothing, never half."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pymongo import AsyncMongoClient

from shared.dev.demo_cloud import DEMO_USERS, ensure_demo_cloud
from shared.dev.processes import Child, ProcessGroup
from shared.dev.runner import _cli, start_clean_without_state
from shared.infra.endpoints import InfraEndpoints
from shared.infra.ports import free_port
from shared.settings import Settings
from tests.sync.world import event

pytestmark = pytest.mark.integration


def emulator(port: int, state: Path) -> Child:
    argv = [*_cli(), "emulator", "--http", "--port", str(port), "--state", str(state)]
    return Child("emulator", argv)


async def answering(base_url: str) -> httpx.AsyncClient:
    """A client once the emulator answers (the caller enters and closes it)."""
    async with httpx.AsyncClient(base_url=base_url) as probe, asyncio.timeout(30):
        while True:
            try:
                if (await probe.get("/_emulator/clock")).status_code == 200:
                    return httpx.AsyncClient(base_url=base_url)
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def test_the_emulator_keeps_its_state_across_a_stop_by_signal(tmp_path: Path) -> None:
    state = tmp_path / "emulator-state.json"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    manager = DEMO_USERS[0][0]

    group = ProcessGroup()
    await group.start(emulator(port, state))
    async with await answering(base_url) as control:
        await ensure_demo_cloud(control, "http://127.0.0.1:1/cb")
        minted = await control.post("/_emulator/tokens", json={"user": manager})
        token = {"Authorization": f"Bearer {minted.json()['access_token']}"}
        made = await control.post(
            "/v1.0/me/events",
            headers=token,
            json=event(
                "kept across restarts",
                (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0),
                [DEMO_USERS[1][0]],
                "m",
            ),
        )
        assert made.status_code == 201, made.text
    await group.stop()  # what the runner does on Ctrl-C: SIGTERM, then wait
    assert state.exists()

    # Restarted, then interrupted (SIGINT) this time: everything is back, and saved again.
    group = ProcessGroup()
    child = await group.start(emulator(port, state))
    async with await answering(base_url) as control:
        state.unlink()  # as the runner does once loaded: only a stop writes it again
        users = {u["mail"] for u in (await control.get("/_emulator/users")).json()}
        assert {email for email, _ in DEMO_USERS} <= users
        events = await control.get("/v1.0/me/events", headers=token)  # the same signing key
        assert events.status_code == 200, events.text
        assert [e["subject"] for e in events.json()["value"]] == ["kept across restarts"]
    assert child.process is not None
    child.process.send_signal(signal.SIGINT)
    async with asyncio.timeout(20):
        assert await child.process.wait() == 0
    await group.stop()
    assert state.exists()


async def test_without_saved_state_the_demo_starts_clean(
    tmp_path: Path, infra: InfraEndpoints, mongo_db: str
) -> None:
    settings = Settings(mongodb_uri=infra.mongodb_uri, mongodb_database=mongo_db)
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(infra.mongodb_uri)
    try:
        await mongo[mongo_db].connections.insert_one({"_id": "c1", "state": "connected"})
        state = tmp_path / "emulator-state.json"
        state.write_text("{}")
        assert await start_clean_without_state(state, settings) is False  # saved: kept
        assert await mongo[mongo_db].connections.count_documents({}) == 1
        state.unlink()
        assert await start_clean_without_state(state, settings) is True  # none: clean
        assert mongo_db not in await mongo.list_database_names()
        assert await start_clean_without_state(state, settings) is False  # nothing to drop
    finally:
        await mongo.close()
