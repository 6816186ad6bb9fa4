"""Each benchmark runs end to end at a small size and reports every figure it promises,
with nothing lost or doubled (its exit status says so). Not a speed test: the figures are
checked for presence and consistency, never against a target."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from shared.infra.endpoints import InfraEndpoints

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def run(
    module: str,
    argv: list[str],
    infra: InfraEndpoints,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, dict[str, Any]]:
    for name, value in infra.as_env().items():
        monkeypatch.setenv(name, value)  # the session's infra, not one of its own
    status = importlib.import_module(f"benchmarks.{module}").main([*argv, "--json"])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return status, report


def test_the_projector_benchmark(
    infra: InfraEndpoints, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, r = run(
        "projector", ["--records", "240", "--connections", "12"], infra, monkeypatch, capsys
    )

    assert status == 0
    assert (r["records"], r["connections"]) == (240, 12)
    assert r["missing"] == 0 and r["duplicated"] == 0 and r["timed_out"] is False
    for name in ("projector_quarters", "baseline_quarters"):
        assert len(r[name]) == 4 and all(rate > 0 for rate in r[name])
    assert r["projector_records_per_second"] > 0 and r["baseline_records_per_second"] > 0
    assert r["ratio_to_baseline"] == round(
        r["projector_records_per_second"] / r["baseline_records_per_second"], 2
    )
    # Batches, not records: far fewer round trips than records (a large batch of new
    # meetings is inserted, a small one upserted); the only reads are the read-model
    # pointer's poll every few seconds (ADR 0011), none per record.
    writes = r["round_trips"].get("update", 0) + r["round_trips"].get("insert", 0)
    assert 0 < writes < 240 / 4, r["round_trips"]
    assert set(r["round_trips"]) <= {"update", "insert", "createIndexes", "find"}, r["round_trips"]
    assert r["round_trips"].get("find", 0) < 240 / 20, r["round_trips"]
    assert r["round_trips_per_record"] < 1
    assert r["peak_rss_mib"] > 0


def test_the_import_benchmark(
    infra: InfraEndpoints, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--mailboxes", "2", "--events", "12", "--one-on-ones", "10", "--timeout", "60"]
    status, r = run("import", argv, infra, monkeypatch, capsys)

    assert status == 0
    assert r["mailboxes"] == 2 and r["one_on_ones_expected"] == 20
    assert r["one_on_ones_found"] == 20 and r["missing"] == 0 and r["duplicated"] == 0
    assert r["timed_out"] is False
    assert 0 < r["per_mailbox_p50_seconds"] <= r["per_mailbox_max_seconds"] <= r["total_seconds"]
    assert r["graph_floor_seconds"] > 0 and r["graph_pages"] >= 2 and r["ratio_to_floor"] > 0
    assert 0 < r["connect_p50_seconds"] <= r["connect_max_seconds"]
    assert set(r["round_trips"]) == {"ingress", "syncer", "projector"}
    assert r["round_trips_per_event"] > 0
    assert set(r["peak_rss_mib"]) == {"ingress", "syncer", "projector"}
    assert r["observer_polls"] >= 1 and 0 < r["observer_seconds"] < r["total_seconds"]
    assert set(r["cpu_seconds"]) == {"ingress", "syncer", "projector"}
    assert r["cpu_seconds"]["syncer"] > 0 and r["cpu_seconds"]["projector"] > 0
    # the largest MongoDB waits, by "service command collection", largest first (which
    # ones make the top depends on the machine's load: only the order and the services)
    waited = r["database_wait_seconds"]
    assert waited and all(seconds >= 0 for seconds in waited.values())
    assert list(waited.values()) == sorted(waited.values(), reverse=True)
    assert {key.split(" ")[0] for key in waited} <= {"ingress", "syncer", "projector"}


def test_the_freshness_benchmark(
    infra: InfraEndpoints, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--mailboxes", "2", "--events", "6", "--one-on-ones", "4", "--rate", "2"]
    status, r = run(
        "freshness", [*argv, "--seconds", "3", "--drain", "20"], infra, monkeypatch, capsys
    )

    assert status == 0
    assert r["unsent"] == 0 and r["missing"] == 0 and r["duplicated"] == 0
    assert r["changes"] >= 4
    assert 0 < r["p50_seconds"] <= r["p95_seconds"] <= r["p99_seconds"] <= r["max_seconds"]
    assert r["graph_floor_p50_seconds"] > 0 and r["ratio_p50_to_floor"] > 0
    assert r["graph_requests_per_change"] > 0 and r["round_trips_per_change"] > 0
    assert len(r["backlog_by_quarter"]) == 4


def test_the_query_shapes_benchmark(
    infra: InfraEndpoints, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, r = run(
        "query_shapes", ["--sizes", "800,400", "--repeat", "1"], infra, monkeypatch, capsys
    )

    assert status == 0
    assert (r["sizes"], r["repeat"]) == ([400, 800], 1)
    shapes = {"id", "id_or", "id_not", "connection", "connection_or", "ids_200"}
    assert set(r["ms_per_query"]) == set(r["ratio_to_id"]) == shapes
    for shape in shapes:
        assert len(r["ms_per_query"][shape]) == 2 and all(ms > 0 for ms in r["ms_per_query"][shape])
        assert r["ratio_to_id"][shape] == [
            round(ms / base, 2)
            for ms, base in zip(r["ms_per_query"][shape], r["ms_per_query"]["id"], strict=True)
        ]
