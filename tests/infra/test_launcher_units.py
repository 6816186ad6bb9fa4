"""Launcher pieces that need no running server: config, ports, state, reaping."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from shared.infra.endpoints import InfraEndpoints
from shared.infra.kafka_jars import jars_present
from shared.infra.kafka_local import LocalKafka, _cluster_id
from shared.infra.local import LocalInfra
from shared.infra.ports import free_port
from shared.infra.processes import read_pid
from shared.infra.selection import OWNER_FILE, integration_infrastructure, reap_abandoned


def test_broker_config_is_loopback_kraft_without_auto_created_topics(tmp_path: Path) -> None:
    props = dict(
        line.split("=", 1)
        for line in LocalKafka(tmp_path, 1111, 2222).properties().splitlines()
        if line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:2222"
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["log.dirs"] == str(tmp_path / "data")


def test_env_lines_are_what_the_settings_read() -> None:
    endpoints = InfraEndpoints("127.0.0.1:1", "mongodb://127.0.0.1:2/?directConnection=true")
    assert endpoints.as_env_lines() == [
        "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1",
        "MONGODB_URI=mongodb://127.0.0.1:2/?directConnection=true",
    ]


def test_ports_are_chosen_once_distinct_and_kept(tmp_path: Path) -> None:
    infra = LocalInfra(tmp_path, prefer_default_ports=False)
    first = infra.endpoints()
    assert LocalInfra(tmp_path).endpoints() == first
    ports = json.loads((tmp_path / "infra.json").read_text())["ports"]
    assert len(set(ports.values())) == 3
    assert not infra.status().running


def test_a_taken_preferred_port_falls_back() -> None:
    taken = free_port()
    assert free_port(taken, avoid=[taken]) != taken


def test_jars_are_incomplete_without_a_matching_marker(tmp_path: Path) -> None:
    assert not jars_present(tmp_path)
    (tmp_path / ".complete").write_text("some other pom\n")
    assert not jars_present(tmp_path)


def test_a_pid_file_never_names_a_stranger(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    assert read_pid(pid_file) == os.getpid()
    assert read_pid(pid_file, owner=tmp_path / "not-in-my-command-line") is None


def test_sessions_of_dead_owners_are_reaped_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    abandoned, live = tmp_path / "session-dead", tmp_path / "session-live"
    for home, pid in ((abandoned, dead.pid), (live, os.getpid())):
        home.mkdir()
        (home / OWNER_FILE).write_text(f"{pid}\n")
    LocalInfra(abandoned / "infra", prefer_default_ports=False).endpoints()  # state, no servers
    assert reap_abandoned(tmp_path) == [abandoned]
    assert live.exists() and not abandoned.exists()


def test_half_external_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.delenv("MONGODB_URI", raising=False)
    with pytest.raises(ValueError, match="both"), integration_infrastructure():
        pass


def test_cluster_ids_never_look_like_flags() -> None:
    ids = [_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_a_stopped_servers_port_taken_by_another_program_is_moved(tmp_path: Path) -> None:
    infra = LocalInfra(tmp_path, prefer_default_ports=False)
    before = infra.endpoints()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", infra.mongo.port))
        squatter.listen()
        infra._move_off_taken_ports()
    after = infra.endpoints()
    assert after.kafka_bootstrap_servers == before.kafka_bootstrap_servers
    assert after.mongodb_uri != before.mongodb_uri
