"""`smvue-sync topics manifest`: Strimzi KafkaTopics from the topic registry, and the
checked-in copies under deploy/kubernetes/overlays/<env>/ are never stale."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

from shared.cli import app
from shared.contracts.topics import ALL_TOPICS, DEAD_LETTER_CONFIG
from shared.messaging import topic_manifest
from shared.messaging.admin import planned_topics
from shared.settings import Settings


def test_checked_in_topic_manifests_match_the_registry() -> None:
    assert topic_manifest.stale_manifests() == []
    result = CliRunner().invoke(app, ["topics", "manifest", "--check"])
    assert result.exit_code == 0, result.output


def test_a_stale_manifest_is_noticed(tmp_path: Path) -> None:
    shutil.copytree(topic_manifest.KUBERNETES_DIR / "overlays", tmp_path / "overlays")
    assert topic_manifest.stale_manifests(tmp_path) == []
    path = topic_manifest.manifest_path("production", tmp_path)
    path.write_text(path.read_text().replace("partitions: 6", "partitions: 12", 1))
    assert topic_manifest.stale_manifests(tmp_path) == [path]
    topic_manifest.manifest_path("dev", tmp_path).unlink()
    assert len(topic_manifest.stale_manifests(tmp_path)) == 2
    topic_manifest.write_manifests(tmp_path)
    assert topic_manifest.stale_manifests(tmp_path) == []


def test_the_manifest_is_what_topics_create_makes_locally() -> None:
    """Same names, partitions and configs as `smvue-sync topics create`; production adds
    3 replicas and min.insync.replicas=2."""
    printed = CliRunner().invoke(app, ["topics", "manifest", "--env", "production"])
    assert printed.exit_code == 0
    documents = [d for d in yaml.safe_load_all(printed.output) if d]
    by_name = {d["spec"]["topicName"]: d for d in documents}
    local = {t.name: t for t in planned_topics(Settings(topic_prefix=""))}
    assert set(by_name) == set(local)
    for name, topic in local.items():
        spec = by_name[name]["spec"]
        assert by_name[name]["metadata"]["name"] == name
        assert by_name[name]["metadata"]["labels"]["strimzi.io/cluster"] == "smvue-kafka"
        assert spec["partitions"] == topic.num_partitions
        assert spec["replicas"] == 3
        assert spec["config"] == {**topic.topic_configs, "min.insync.replicas": "2"}
    for spec in ALL_TOPICS:
        if spec.has_dead_letter:
            assert (
                by_name[spec.dead_letter]["spec"]["config"]["retention.ms"]
                == (DEAD_LETTER_CONFIG["retention.ms"])
            )


def test_dev_topics_fit_a_one_broker_cluster() -> None:
    printed = CliRunner().invoke(app, ["topics", "manifest", "--env", "dev"])
    documents = [d for d in yaml.safe_load_all(printed.output) if d]
    assert documents
    assert {d["spec"]["replicas"] for d in documents} == {1}
    assert {d["spec"]["config"]["min.insync.replicas"] for d in documents} == {"1"}
