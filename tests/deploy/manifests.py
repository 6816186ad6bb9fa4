"""Rendering deploy/kubernetes/ with kustomize (installed by scripts/bootstrap into
.tools/bin) and validating each resource offline: core kinds with kubernetes-validate's
bundled schemas (strict), the CRDs we use with the schemas in tests/deploy/schemas/."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
KUBERNETES_VERSION = "1.33.0"  # the oldest minor we promise (docs/deploy.md)
ENVIRONMENTS = ("dev", "production")
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "kafkatopic-kafka.strimzi.io-v1beta2.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda.sh-v1alpha1.json",
}

Resource = dict[str, Any]


def kustomize_binary() -> str:
    """The project's kustomize; in CI its absence is a failure, elsewhere a skip."""
    local = ROOT / ".tools" / "bin" / "kustomize"
    found = str(local) if local.exists() else shutil.which("kustomize")
    if found is None:
        reason = "kustomize not installed (scripts/bootstrap installs it where Go is)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@functools.cache
def render(environment: str) -> tuple[Resource, ...]:
    out = subprocess.run(
        [kustomize_binary(), "build", str(KUBERNETES / "overlays" / environment)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def of_kind(resources: tuple[Resource, ...], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


@functools.cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[(api_version, kind)]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validation_errors(resource: Resource) -> list[str]:
    """Everything wrong with one resource; an unknown kind is an error too."""
    key = (resource["apiVersion"], resource["kind"])
    if key in CRD_SCHEMAS:
        return [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in crd_validator(*key).iter_errors(resource)
        ]
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [f"no schema: {exc.message}"]
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
    return []
