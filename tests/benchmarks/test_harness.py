"""The benchmark harness's own rules that a run at small size would not show."""

from __future__ import annotations

import importlib

import uvicorn

from benchmarks.harness import EMULATOR_KEEP_ALIVE_SECONDS, client_limits, records_handled
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


def test_records_handled_is_read_from_the_services_metrics_for_that_service_and_topic() -> None:
    # The projector benchmark's progress: the projector's own count, not a count of the
    # read model (SecantusDB scans the collection under its storage lock to count it).
    exposition = "\n".join(
        [
            "# TYPE smvue_records_handled_total counter",
            'smvue_records_handled_total{service="projector",topic="smvue.calendar.meetings.v1"}'
            " 240.0",
            'smvue_records_handled_total{service="projector",topic="smvue.calendar.connections.v1"}'
            " 3.0",
            'smvue_records_handled_created{service="projector",topic="smvue.calendar.meetings.v1"}'
            " 1.7e9",
        ]
    )

    assert records_handled(exposition, "projector", "smvue.calendar.meetings.v1") == 240
    assert records_handled(exposition, "projector", "smvue.calendar.connections.v1") == 3
    assert records_handled(exposition, "syncer", "smvue.calendar.meetings.v1") == 0


def test_the_import_observer_counts_at_once_when_the_projector_may_be_done() -> None:
    # Between its spaced-out counts of the read model (SecantusDB reads every document it
    # counts), the projector's handled records say when the end may have come.
    count_due = importlib.import_module("benchmarks.import").count_due
    assert not count_due(handled=139, expected=140, handled_at_last_count=-1)
    assert count_due(handled=140, expected=140, handled_at_last_count=-1)
    assert not count_due(handled=140, expected=140, handled_at_last_count=140)  # counted
    assert count_due(handled=141, expected=140, handled_at_last_count=140)  # more since
