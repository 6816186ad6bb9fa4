"""`--state FILE`: save and reload tenants, users, apps, refresh tokens, subscriptions and any
store attached by another side that offers `to_dict()` + `load_dict(data)` (in place) or a
`from_dict(data)` classmethod. Written atomically as JSON."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from emulators.msgraph.directory import Tenant, TenantPolicy, User
from emulators.msgraph.state import EmulatorState

VERSION = 1
_BUILTIN = {"identity", "subscriptions"}
_SKIPPED = {"token_verifier", "clock", "directory", "changes", "extras", "base_url"}


def dump(state: EmulatorState) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": VERSION,
        "clock_offset_seconds": state.clock.offset.total_seconds(),
        "tenants": [asdict(t) for t in state.directory.tenants.values()],
        "users": [asdict(u) for u in state.directory.users.values()],
        "identity": state.identity.to_dict(),
        "subscriptions": state.subscriptions.to_dict(),
        "stores": {},
    }
    for name, store in vars(state).items():
        if name in _BUILTIN | _SKIPPED:
            continue
        to_dict = getattr(store, "to_dict", None)
        if callable(to_dict):
            data["stores"][name] = to_dict()
    return data


def load(state: EmulatorState, data: dict[str, Any]) -> None:
    from datetime import timedelta

    offset = float(data.get("clock_offset_seconds", 0))
    if offset > 0:
        state.clock.advance(timedelta(seconds=offset))
    for raw in data.get("tenants", []):
        policy = TenantPolicy(**raw.pop("policy", {}))
        state.directory.tenants[raw["id"]] = Tenant(**raw, policy=policy)
    for raw in data.get("users", []):
        state.directory.users[raw["id"]] = User(**raw)
    state.identity.load_dict(data.get("identity", {}))
    state.subscriptions.load_dict(data.get("subscriptions", {}))
    for name, stored in data.get("stores", {}).items():
        store = getattr(state, name, None)
        if store is None:
            continue
        if callable(getattr(store, "load_dict", None)):
            store.load_dict(stored)
        elif callable(getattr(type(store), "from_dict", None)):
            setattr(state, name, type(store).from_dict(stored))


def save_file(state: EmulatorState, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(dump(state), handle, indent=1)
    os.chmod(tmp, 0o600)  # holds the signing key and app secrets
    os.replace(tmp, path)


def load_file(state: EmulatorState, path: Path) -> bool:
    if not path.exists():
        return False
    load(state, json.loads(path.read_text(encoding="utf-8")))
    return True
