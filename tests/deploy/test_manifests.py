"""The Kubernetes manifests: they render, validate offline, and say what the code does
(ports, probes, shutdown, configuration names, secrets kept out, consumer groups and
partition bounds from the topic registry)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import SecretStr

from services.syncer.settings import SyncerSettings
from shared.contracts.topics import (
    ALL_TOPICS,
    CONNECTION_COMMANDS,
    CONNECTIONS,
    MEETING_COMMANDS,
    MEETINGS,
    NOTIFICATIONS,
    ROSTER,
    TopicSpec,
)
from shared.messaging.topic_manifest import PROFILES
from shared.settings import Settings
from tests.deploy.manifests import ENVIRONMENTS, of_kind, render, validation_errors

SERVICES = ("ingress", "syncer", "writer", "projector")
PORTS = {name: Settings.model_fields[f"{name}_port"].default for name in SERVICES}
# What each service consumes (its app.py `subscribe` calls); the scale-out test checks
# these against the consumer groups the running services really join.
CONSUMED: dict[str, tuple[TopicSpec, ...]] = {
    "syncer": (CONNECTIONS, CONNECTION_COMMANDS, NOTIFICATIONS, ROSTER),
    "writer": (MEETING_COMMANDS,),
    "projector": (MEETINGS, CONNECTIONS),
}
PRODUCTION_REPLICAS = {"ingress": 3, "syncer": 3, "writer": 2, "projector": 3}

Resource = dict[str, Any]


def consumer_group(service: str, spec: TopicSpec) -> str:
    return f"{Settings().group_id(service)}.{spec.name}"


def container(deployment: Resource) -> Resource:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def env_names(model: type[Settings] | type[SyncerSettings], prefix: str) -> dict[str, str]:
    """Every environment name a settings model reads → its field."""
    names: dict[str, str] = {}
    for field, info in model.model_fields.items():
        names[f"{prefix}{field.upper()}"] = field
        alias = info.validation_alias
        for choice in getattr(alias, "choices", ()):
            names[str(choice)] = field
    return names


KNOWN_ENV = {**env_names(Settings, "SMVUE_"), **env_names(SyncerSettings, "SMVUE_SYNCER_")}
SECRET_FIELDS = {
    "client_secret",
    "token_keys",
    "service_tokens",
    "mongodb_uri",  # carries the database user's password
}


def test_secret_fields_are_the_settings_secret_types() -> None:
    """SECRET_FIELDS above follows Settings: every SecretStr-typed field is in it."""
    typed = {
        name
        for name, info in Settings.model_fields.items()
        if "SecretStr" in str(info.annotation) or info.annotation is SecretStr
    }
    assert typed <= SECRET_FIELDS


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_resource_validates_offline(environment: str) -> None:
    resources = render(environment)
    errors = {
        f"{r['kind']}/{r['metadata']['name']}": problems
        for r in resources
        if (problems := validation_errors(r))
    }
    assert errors == {}
    kinds = {r["kind"] for r in resources}
    assert {"Deployment", "Service", "Ingress", "PodDisruptionBudget", "ConfigMap"} <= kinds
    assert {"ScaledObject", "KafkaTopic"} <= kinds


def test_the_validators_refuse_a_broken_resource() -> None:
    """The checks above can fail: a typo in a core field and in a CRD field is caught."""
    deployment = of_kind(render("production"), "Deployment")["smvue-syncer"]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 3}}
    assert validation_errors(broken)
    scaled = of_kind(render("production"), "ScaledObject")["smvue-syncer"]
    trigger = {**scaled["spec"]["triggers"][0], "metadata": {"topic": "x"}}
    assert validation_errors({**scaled, "spec": {**scaled["spec"], "triggers": [trigger]}})
    topic = of_kind(render("production"), "KafkaTopic")[NOTIFICATIONS.name]
    assert validation_errors({**topic, "spec": {**topic["spec"], "partition": 6}})
    assert validation_errors({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {}})


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_as_the_code_expects(environment: str, service: str) -> None:
    deployment = of_kind(render(environment), "Deployment")[f"smvue-{service}"]
    pod = deployment["spec"]["template"]["spec"]
    main = container(deployment)
    assert main["args"] == ["smvue-sync", "run", service]
    port = PORTS[service]
    assert [p["containerPort"] for p in main["ports"]] == [port]
    assert {"name": f"SMVUE_{service.upper()}_PORT", "value": str(port)} in main["env"]
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    # Graceful termination: preStop + the services' own shutdown grace fit the period.
    config = of_kind(render(environment), "ConfigMap")
    (config_map,) = config.values()
    grace = float(config_map["data"]["SMVUE_SHUTDOWN_GRACE_SECONDS"])
    pre_stop = int(main["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pre_stop + grace + 5 <= pod["terminationGracePeriodSeconds"]
    # Config and secrets by reference only.
    sources = {next(iter(s)): s[next(iter(s))]["name"] for s in main["envFrom"]}
    assert sources == {"configMapRef": config_map["metadata"]["name"], "secretRef": "smvue-secrets"}
    # Unprivileged, read-only, with bounded memory.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    resources = main["resources"]
    assert resources["requests"]["memory"] and resources["limits"]["memory"]
    assert _mebibytes(resources["requests"]["memory"]) <= _mebibytes(resources["limits"]["memory"])


def _mebibytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert match, quantity
    return int(match[1]) * (1024 if match[2] == "Gi" else 1)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_configuration_names_are_settings_and_secrets_stay_out(environment: str) -> None:
    resources = render(environment)
    assert of_kind(resources, "Secret") == {}, "secrets are created out of band, never here"
    (config_map,) = of_kind(resources, "ConfigMap").values()
    unknown = sorted(set(config_map["data"]) - set(KNOWN_ENV))
    assert unknown == []
    fields = {KNOWN_ENV[name] for name in config_map["data"]}
    assert fields & SECRET_FIELDS == set()
    for deployment in of_kind(resources, "Deployment").values():
        for entry in container(deployment).get("env", []):
            assert entry["name"] in KNOWN_ENV
            assert KNOWN_ENV[entry["name"]] not in SECRET_FIELDS
    # The public URL Graph calls is HTTPS (Graph refuses anything else).
    assert config_map["data"]["SMVUE_PUBLIC_BASE_URL"].startswith("https://")
    assert config_map["data"]["SMVUE_OAUTH_REDIRECT_URI"].startswith(
        config_map["data"]["SMVUE_PUBLIC_BASE_URL"] + "/oauth/outlook/"
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_disruption_budgets_cover_every_service(environment: str) -> None:
    resources = render(environment)
    budgets = of_kind(resources, "PodDisruptionBudget")
    for service in SERVICES:
        deployment = of_kind(resources, "Deployment")[f"smvue-{service}"]
        budget = budgets[f"smvue-{service}"]
        selector = budget["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        assert budget["spec"]["maxUnavailable"] == 1


def _ingress_routes() -> set[str]:
    """Every path the ingress app serves (its routers as app.py includes them)."""
    from services.ingress.commands.routes import command_router
    from services.ingress.connect.routes import browser_router, service_router
    from services.ingress.notifications.routes import router as notifications_router

    async def no_auth() -> None:
        return None

    routers = [service_router(no_auth), command_router(no_auth), browser_router]
    return {getattr(r, "path", "") for x in [*routers, notifications_router] for r in x.routes}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_ingress_publishes_only_the_webhook_and_the_callback(environment: str) -> None:
    resources = render(environment)
    services = of_kind(resources, "Service")
    ingresses = of_kind(resources, "Ingress")
    public = ingresses["smvue-ingress"]["spec"]
    assert public["ingressClassName"] == "public"
    (rule,) = public["rules"]
    assert public["tls"][0]["hosts"] == [rule["host"]]
    prefixes = [p["path"] for p in rule["http"]["paths"]]
    assert prefixes == ["/graph/", "/oauth/outlook/"]
    routes = _ingress_routes()
    for route in ("/graph/notifications", "/graph/lifecycle", "/oauth/outlook/callback"):
        assert route in routes and any(route.startswith(p) for p in prefixes)
    assert not any(r.startswith("/v1/") for p in prefixes for r in routes if r.startswith(p))
    internal = ingresses["smvue-projector"]["spec"]
    assert internal["ingressClassName"] == "internal"
    for name in ("smvue-ingress", "smvue-projector"):
        service = services[name]["spec"]
        assert service["ports"][0]["targetPort"] == "http"
        assert service["selector"]["app.kubernetes.io/name"] == name


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("service", sorted(CONSUMED))
def test_lag_autoscaling_is_bounded_by_the_partitions(environment: str, service: str) -> None:
    scaled = of_kind(render(environment), "ScaledObject")[f"smvue-{service}"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == f"smvue-{service}"
    triggers = {t["metadata"]["topic"]: t for t in scaled["triggers"]}
    consumed = CONSUMED[service]
    assert set(triggers) == {spec.name for spec in consumed}
    for spec in consumed:
        metadata = triggers[spec.name]["metadata"]
        assert triggers[spec.name]["type"] == "kafka"
        assert metadata["consumerGroup"] == consumer_group(service, spec)
        assert metadata["bootstrapServersFromEnv"] == "KAFKA_BOOTSTRAP_SERVERS"
        assert metadata.get("allowIdleConsumers", "false") == "false"
    assert scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    assert scaled["maxReplicaCount"] <= max(spec.partitions for spec in consumed)
    if environment == "production":
        assert scaled["minReplicaCount"] == PRODUCTION_REPLICAS[service]


def test_production_replicas_and_topics_durability() -> None:
    resources = render("production")
    deployments = of_kind(resources, "Deployment")
    for service, replicas in PRODUCTION_REPLICAS.items():
        assert deployments[f"smvue-{service}"]["spec"]["replicas"] == replicas
    autoscaler = of_kind(resources, "HorizontalPodAutoscaler")["smvue-ingress"]["spec"]
    assert autoscaler["minReplicas"] == PRODUCTION_REPLICAS["ingress"]
    topics = of_kind(resources, "KafkaTopic")
    assert len(topics) == sum(1 + spec.has_dead_letter for spec in ALL_TOPICS)
    for spec in ALL_TOPICS:
        topic = topics[spec.name]["spec"]
        assert topic["partitions"] == spec.partitions
        assert topic["replicas"] == PROFILES["production"].replicas == 3
        assert topic["config"]["min.insync.replicas"] == "2"
        assert {k: topic["config"][k] for k in spec.config} == spec.config
        assert topics[spec.name]["metadata"]["namespace"] == "smvue"


def test_dev_runs_one_of_each() -> None:
    resources = render("dev")
    for deployment in of_kind(resources, "Deployment").values():
        assert deployment["spec"]["replicas"] == 1
    for topic in of_kind(resources, "KafkaTopic").values():
        assert topic["spec"]["replicas"] == 1
        assert topic["spec"]["config"]["min.insync.replicas"] == "1"
