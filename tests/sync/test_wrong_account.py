"""Help page, "Wrong Account Connected": disconnect, reconnect choosing another account,
and from then on only the new account is used — its token for every request, its
addresses for deciding what a 1:1 is (issue 9, item 1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.syncer.tokens import SyncerTokens, parting_key
from shared.contracts.audit import AuditOperation, AuditOutcome, AuditRecorded
from shared.contracts.connections import ConnectionDisconnected, connection_id_for
from shared.contracts.meetings import MeetingRemoved, MeetingUpserted
from shared.contracts.topics import AUDIT, CONNECTIONS, MEETINGS
from shared.graph.errors import NotConnected
from tests.fixtures.connect import SERVICE_TOKEN, connect_user
from tests.fixtures.kafka import TopicReader
from tests.sync.world import World, event, subjects


class VaultTokens:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    async def access_token(self, connection_id: str, *, force_refresh: bool = False) -> str:
        self.calls.append((connection_id, force_refresh))
        return "token-of-the-new-account"


async def test_a_parting_token_serves_only_its_own_subscriptions_cleanup() -> None:
    vault = VaultTokens()
    tokens = SyncerTokens(vault)
    tokens.keep_for_cleanup(parting_key("sub-a"), "token-of-the-old-account", "c1")
    # The connection's own calls, forced refresh or not, never get the parting token.
    assert await tokens.access_token("c1") == "token-of-the-new-account"
    assert await tokens.access_token("c1", force_refresh=True) == "token-of-the-new-account"
    assert vault.calls == [("c1", False), ("c1", True)]
    assert await tokens.access_token(parting_key("sub-a")) == "token-of-the-old-account"
    tokens.forget_connection("c1")  # a reconnect
    with pytest.raises(NotConnected):
        await tokens.access_token(parting_key("sub-a"))
    assert tokens.tracked() == 0


async def test_an_access_token_is_reused_only_within_its_connect_epoch() -> None:
    vault = VaultTokens()
    tokens = SyncerTokens(vault)
    tokens.expect("c1", "epoch-1")
    assert await tokens.access_token("c1") == "token-of-the-new-account"
    await tokens.access_token("c1")  # reused: no vault read
    assert vault.calls == [("c1", False)]
    await tokens.access_token("c1", force_refresh=True)  # Graph said 401: the vault
    assert vault.calls[-1] == ("c1", True)
    tokens.expect("c1", "epoch-2")  # reconnected (another account, maybe) elsewhere
    await tokens.access_token("c1")
    assert len(vault.calls) == 3
    tokens.expect("c1", None)  # a state from before epochs: never reused
    await tokens.access_token("c1")
    await tokens.access_token("c1")
    assert len(vault.calls) == 5
    tokens.expect("c1", "epoch-2")
    tokens.forget_connection("c1")  # a reconnect on this instance
    await tokens.access_token("c1")
    assert len(vault.calls) == 6
    assert tokens.reused() == 0  # forgotten, and no epoch said since: nothing held


async def test_a_reused_token_is_dropped_after_its_time() -> None:
    vault = VaultTokens()
    tokens = SyncerTokens(vault, reuse_seconds=0.0)
    tokens.expect("c1", "epoch-1")
    await tokens.access_token("c1")
    await tokens.access_token("c1")
    assert len(vault.calls) == 2  # past its time: read again
    assert tokens.reused() == 0


def _slot(days: int) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(
        hour=11, minute=0, second=0, microsecond=0
    )


def _abandoned(messages: list[Any]) -> bool:
    return any(
        isinstance(m, AuditRecorded)
        and m.payload.operation is AuditOperation.SUBSCRIPTION_DELETE
        and m.payload.outcome is AuditOutcome.FAILED
        and (m.payload.detail or "").startswith("abandoned")
        for m in messages
    )


@pytest.mark.integration
async def test_reconnecting_with_another_account_uses_only_that_account(world: World) -> None:
    state = world.emulator.state
    account_a, bob = world.cloud.manager, world.cloud.member
    fabrikam = state.directory.add_tenant("Fabrikam", "fabrikam.test")
    account_b = state.directory.add_user(fabrikam.id, "ann@fabrikam.test", "Ann (Fabrikam)")
    await world.roster("ann", bob.mail, version=1)
    await world.as_user(
        "POST", "/me/events", account_a.id, json=event("A / Bob", _slot(2), [bob.mail], "m")
    )
    await world.as_user(
        "POST", "/me/events", account_b.id, json=event("B / Bob", _slot(3), [bob.mail], "m")
    )

    first = await connect_user(world.emulator, world.settings, "ann", account_a.mail)
    assert first.status == "connected"
    await world.wait_read_model("ann", lambda d: subjects(d) == ["A / Bob"])

    # Deleting A's subscription keeps failing, so A's last token is still held for it.
    await world.control(
        "POST",
        "/faults",
        json={
            "path_regex": r"^/v1\.0/subscriptions/",
            "method": "DELETE",
            "status": 403,
            "mailbox": account_a.id,
            "count": None,
        },
    )
    async with (
        TopicReader(world.settings, CONNECTIONS, AUDIT) as reader,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{world.settings.ingress_port}") as api,
    ):
        answer = await api.post(
            "/v1/connections/ann/disconnect", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
        )
        assert answer.status_code == 202
        await reader.wait_for(lambda m: any(isinstance(x, ConnectionDisconnected) for x in m))

        await world.control("DELETE", "/requests")
        second = await connect_user(world.emulator, world.settings, "ann", account_b.mail)
        assert second.status == "connected"
        # B's 1:1 is imported: B's addresses decide.
        await world.wait_read_model("ann", lambda d: "B / Bob" in subjects(d))
        # A's meeting stays, as on disconnect ("your SMVue meeting history will still be
        # there"): B's import is no reason to retract it. The import published B's upsert
        # and any retraction in one acknowledged batch, so both are on the topic by now.
        async with TopicReader(world.settings, MEETINGS) as meetings:
            published = await meetings.wait_for(
                lambda m: any(
                    isinstance(x, MeetingUpserted) and x.payload.subject == "B / Bob" for x in m
                )
            )
        assert [m.payload.reason for m in published if isinstance(m, MeetingRemoved)] == []
        assert subjects(await world.one_on_ones("ann")) == ["A / Bob", "B / Bob"]
        # A's subscription cleanup is abandoned: its token is gone with the reconnect.
        await reader.wait_for(_abandoned)

    (sync_state,) = await world.mongo_docs("sync_state", {"_id": connection_id_for("ann")})
    assert sync_state["owner_addresses"] == ["ann@fabrikam.test"]
    log = sorted(await world.control("GET", "/requests"), key=lambda r: r["at"])
    graph_calls = [r for r in log if r["path"].startswith("/v1.0/")]
    b_calls = [r for r in graph_calls if r["user_id"] == account_b.id]
    assert b_calls, "nothing was asked of Graph for the new account"
    after_reconnect = [r for r in graph_calls if r["at"] >= b_calls[0]["at"]]
    leaked = [(r["method"], r["path"]) for r in after_reconnect if r["user_id"] == account_a.id]
    assert leaked == [], f"requests with the old account's token after the reconnect: {leaked}"
    assert not any(r["path"] in ("/v1.0/me", f"/v1.0/users/{account_b.id}") for r in log)
