"""The Graph client's retry, throttling and error behaviour, against a scripted transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from shared.graph.client import GraphClient, RetryPolicy
from shared.graph.errors import GraphNotFound, GraphThrottled
from shared.graph.limiter import MailboxLimiter


class Tokens:
    def __init__(self) -> None:
        self.forced = 0

    async def access_token(self, connection_id: str, *, force_refresh: bool = False) -> str:
        self.forced += force_refresh
        return f"token-{connection_id}-{self.forced}"


def client_for(
    handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float], tokens: Tokens
) -> GraphClient:
    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return GraphClient(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        "https://graph.test/v1.0",
        tokens,
        service="test",
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=30),
        sleep=fake_sleep,
    )


async def test_retry_after_is_honoured_then_succeeds() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"code": "x"}}),
            httpx.Response(200, json={"value": []}),
        ]
    )
    sleeps: list[float] = []
    client = client_for(lambda request: next(answers), sleeps, Tokens())
    response = await client.get("c1", "/me/events", operation="list")
    assert response.body == {"value": []}
    assert sleeps == [7.0]


async def test_throttling_beyond_patience_raises_with_retry_after() -> None:
    sleeps: list[float] = []
    client = client_for(
        lambda request: httpx.Response(429, headers={"Retry-After": "600"}), sleeps, Tokens()
    )
    with pytest.raises(GraphThrottled) as caught:
        await client.get("c1", "/me/events", operation="list")
    assert caught.value.retry_after == 600
    assert sleeps == []


async def test_a_mailbox_backing_off_longer_than_our_patience_fails_fast() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(429, headers={"Retry-After": "600"})

    client = client_for(handler, [], Tokens())
    with pytest.raises(GraphThrottled):
        await client.get("c1", "/me/events", operation="list")
    with pytest.raises(GraphThrottled) as caught:
        await client.get("c1", "/me/events", operation="list")
    assert len(calls) == 1  # the second call never reached Graph
    assert caught.value.retry_after is not None and caught.value.retry_after > 590
    client.limiter.block("c2", 0)
    calls.clear()
    with pytest.raises(GraphThrottled):  # another mailbox still asks Graph itself
        await client.get("c2", "/me/events", operation="list")
    assert len(calls) == 1


async def test_a_401_refreshes_the_token_once() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(401) if len(seen) == 1 else httpx.Response(200, json={})

    tokens = Tokens()
    await client_for(handler, [], tokens).get("c1", "/me", operation="me")
    assert seen == ["Bearer token-c1-0", "Bearer token-c1-1"]


async def test_errors_are_typed_and_carry_graph_request_id() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404,
            headers={"request-id": "rid-1"},
            json={"error": {"code": "ErrorItemNotFound", "message": "gone"}},
        )

    with pytest.raises(GraphNotFound) as caught:
        await client_for(handler, [], Tokens()).get("c1", "/me/events/x", operation="get")
    assert caught.value.code == "ErrorItemNotFound"
    assert caught.value.request_id == "rid-1"


async def test_limiter_keeps_four_in_flight_per_mailbox_and_others_flow() -> None:
    limiter = MailboxLimiter(concurrency=4)
    peak = {"a": 0, "b": 0}
    current = {"a": 0, "b": 0}

    async def work(mailbox: str) -> None:
        async with limiter.slot(mailbox):
            current[mailbox] += 1
            peak[mailbox] = max(peak[mailbox], current[mailbox])
            await asyncio.sleep(0.01)
            current[mailbox] -= 1

    limiter.block("a", 0.2)  # mailbox a is throttled; b must not wait for it
    started = asyncio.get_running_loop().time()
    b_done = asyncio.gather(*(work("b") for _ in range(10)))
    a_done = asyncio.gather(*(work("a") for _ in range(10)))
    await b_done
    b_elapsed = asyncio.get_running_loop().time() - started
    await a_done
    assert peak == {"a": 4, "b": 4}
    assert b_elapsed < 0.2


async def test_every_call_asks_for_immutable_ids_beside_the_callers_preferences() -> None:
    seen: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get_list("prefer"))
        return httpx.Response(200, json={})

    client = client_for(handler, [], Tokens())
    await client.get("c1", "/me/events/x", operation="get")
    await client.request("c1", "POST", "/subscriptions", operation="create", json={})
    await client.get(
        "c1", "/me/calendarView/delta", operation="delta", headers={"prefer": "odata.maxpagesize=5"}
    )
    assert seen == [
        ['IdType="ImmutableId"'],
        ['IdType="ImmutableId"'],
        ['odata.maxpagesize=5, IdType="ImmutableId"'],
    ]
