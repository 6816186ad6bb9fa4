"""The benchmark harness's own rules that a run at small size would not show."""

from __future__ import annotations

import uvicorn

from benchmarks.harness import EMULATOR_KEEP_ALIVE_SECONDS, client_limits
from emulators.msgraph.app import create_app
from emulators.msgraph.state import EmulatorState


def test_a_persons_client_gives_idle_connections_up_before_the_emulator_closes_them() -> None:
    # At 10 changes/s over 50 mailboxes each mailbox's client is idle ~5 s between PATCHes:
    # with httpx's default 5 s expiry against uvicorn's 5 s keep-alive, some PATCHes went
    # out on a connection the server was closing ("Server disconnected").
    server = uvicorn.Config(create_app(EmulatorState()))  # what tests/fixtures/emulator runs

    assert server.timeout_keep_alive == EMULATOR_KEEP_ALIVE_SECONDS
    expiry = client_limits().keepalive_expiry
    assert expiry is not None and expiry < EMULATOR_KEEP_ALIVE_SECONDS / 2
