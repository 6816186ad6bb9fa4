"""The ingress benchmark runs end to end (tiny N) and reports every figure it promises."""

from __future__ import annotations

import json

import pytest

from benchmarks.ingress_notifications import main
from shared.infra.endpoints import InfraEndpoints

pytestmark = pytest.mark.integration

PHASE_FIELDS = {"p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms", "per_second", "unexpected"}


def test_the_benchmark_reports_its_figures_and_every_answer_is_202(
    infra: InfraEndpoints, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in infra.as_env().items():
        monkeypatch.setenv(name, value)  # the session's infra, not one of its own
    argv = ["--requests", "20", "--concurrency", "4", "--warmup", "4", "--subscriptions", "2"]

    status = main([*argv, "--json"])

    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert report["requests"] == 20 and report["concurrency"] == 4
    for phase in ("healthz", "notifications"):
        assert report[phase].keys() >= PHASE_FIELDS
        assert report[phase]["requests"] == 20
        stats = report[phase]
        assert 0 < stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    assert report["notifications"]["statuses"] == {"202": 20}
    assert report["not_202"] == 0
    assert report["healthz"]["statuses"] == {"200": 20}
    assert report["p99_ratio"] > 0
    assert report["graph_threshold_seconds"] == 10.0
    assert report["p99_share_of_threshold"] < 1  # far under Graph's slow-endpoint mark
    assert report["records_on_topic"] == report["records_expected"] == 24
