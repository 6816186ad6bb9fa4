"""Throttling (429 + Retry-After), fault injection and the request log's concurrency."""

from __future__ import annotations

import asyncio

import httpx

from emulators.msgraph.app import create_app
from emulators.msgraph.state import EmulatorState
from tests.emulator.conftest import Seed, bearer


async def test_rate_limit_answers_429_with_retry_after(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    await client.patch("/_emulator/throttling", json={"max_requests": 3, "window_seconds": 60})
    headers = bearer(state, seed.ann)
    statuses = [
        (await client.get("/v1.0/subscriptions", headers=headers)).status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    throttled = await client.get("/v1.0/subscriptions", headers=headers)
    assert throttled.json()["error"]["code"] == "ApplicationThrottled"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    # Per app per mailbox: Bob's mailbox and another app are unaffected.
    assert (
        await client.get("/v1.0/subscriptions", headers=bearer(state, seed.bob))
    ).status_code == 200
    other = bearer(state, seed.ann, client_id="other-app")
    assert (await client.get("/v1.0/subscriptions", headers=other)).status_code == 200
    await client.post("/_emulator/clock/advance", json={"seconds": 61})
    assert (await client.get("/v1.0/subscriptions", headers=headers)).status_code == 200


async def test_concurrency_limit_and_request_log(
    client: httpx.AsyncClient, state: EmulatorState, seed: Seed
) -> None:
    await client.post(
        "/_emulator/faults",
        json={"path_regex": "^/v1.0/subscriptions$", "status": None, "latency_ms": 200, "count": 6},
    )
    headers = bearer(state, seed.ann)
    responses = await asyncio.gather(
        *(client.get("/v1.0/subscriptions", headers=headers) for _ in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(429) >= 1 and statuses.count(200) >= 4
    throttled = next(r for r in responses if r.status_code == 429)
    assert throttled.headers["Retry-After"] == "1"
    log = (await client.get("/_emulator/requests", params={"mailbox": seed.ann.id})).json()
    assert len(log) == 6
    assert max(r["concurrency"] for r in log) >= 5
    assert {r["client_id"] for r in log} == {"5c7b2f60-3f4e-4b7a-9a55-e1a0c0de0001"}
    assert all("authorization" not in r["headers"] for r in log)
    assert await client.delete("/_emulator/requests") is not None
    assert (await client.get("/_emulator/requests")).json() == []


async def test_fault_injection(client: httpx.AsyncClient, state: EmulatorState, seed: Seed) -> None:
    added = await client.post(
        "/_emulator/faults",
        json={
            "method": "GET",
            "path_regex": "/v1.0/subscriptions",
            "status": 503,
            "retry_after": 7,
            "count": 2,
        },
    )
    rule = added.json()
    headers = bearer(state, seed.ann)
    first = await client.get("/v1.0/subscriptions", headers=headers)
    assert first.status_code == 503 and first.headers["Retry-After"] == "7"
    assert first.json()["error"]["code"] == "ServiceUnavailable"
    post = await client.post("/v1.0/subscriptions", json={}, headers=headers)
    assert post.status_code == 400  # method didn't match: the real handler answered
    assert (await client.get("/v1.0/subscriptions", headers=headers)).status_code == 503
    assert (await client.get("/v1.0/subscriptions", headers=headers)).status_code == 200
    listed = (await client.get("/_emulator/faults")).json()
    assert listed[0]["id"] == rule["id"] and listed[0]["hits"] == 2
    await client.delete("/_emulator/faults")
    assert (await client.get("/_emulator/faults")).json() == []


async def test_reset_and_mint(client: httpx.AsyncClient, state: EmulatorState, seed: Seed) -> None:
    minted = (await client.post("/_emulator/tokens", json={"user": "ann@contoso.com"})).json()
    ok = await client.get(
        "/v1.0/subscriptions", headers={"Authorization": f"Bearer {minted['access_token']}"}
    )
    assert ok.status_code == 200
    assert (await client.post("/_emulator/reset")).status_code == 204
    assert (await client.get("/_emulator/users")).json() == []
    gone = await client.get(
        "/v1.0/subscriptions", headers={"Authorization": f"Bearer {minted['access_token']}"}
    )
    assert gone.status_code == 401


async def test_a_client_that_goes_away_mid_request_is_logged_499_not_a_server_error(
    state: EmulatorState, seed: Seed
) -> None:
    """A client that times out (e.g. during an injected latency) and closes its connection
    before its body was read: Graph just sees the connection go. The emulator used to raise
    starlette's ClientDisconnect out of the app (a traceback in every chaos run's log) and
    log the request as a 500 it never answered; it is logged as 499 (client closed)."""
    app = create_app(state)
    token = bearer(state, seed.ann)["Authorization"].encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/v1.0/me/events",
        "raw_path": b"/v1.0/me/events",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"emulator.test"),
            (b"authorization", token),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("emulator.test", 443),
    }
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await app(scope, receive, send)  # must not raise

    assert not sent  # nothing to answer: the client is gone
    (record,) = [r for r in state.request_log.records if r.path == "/v1.0/me/events"]
    assert record.status == 499
