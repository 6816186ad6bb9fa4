"""Everything the emulator knows, in memory; one instance per running emulator.

Each side of the emulator hangs its own store here (calendar events, identity, subscriptions,
control-plane settings). `--state FILE` persists and reloads it (see persistence.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulators.msgraph.changes import ChangeFeed
from emulators.msgraph.clock import Clock
from emulators.msgraph.directory import Directory
from emulators.msgraph.identity.service import IdentityService


@dataclass
class EmulatorState:
    base_url: str = "http://127.0.0.1:8600"  # scheme://host:port the emulator is reached at
    clock: Clock = field(default_factory=Clock)
    directory: Directory = field(default_factory=Directory)
    changes: ChangeFeed = field(default_factory=ChangeFeed)
    # Set by the identity side (identity/): verifies bearer tokens → Principal.
    token_verifier: Any = None
    # Further stores are attached by each side: calendars, identity, subscriptions, control.
    extras: dict[str, Any] = field(default_factory=dict)
    # Apps, codes, tokens; built from clock + directory, and installed as `token_verifier`.
    identity: IdentityService = field(init=False)

    def __post_init__(self) -> None:
        self.identity = IdentityService(self.clock, self.directory, lambda: self.base_url)
        if self.token_verifier is None:
            self.token_verifier = self.identity
