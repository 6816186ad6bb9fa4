"""Everything the emulator knows, in memory; one instance per running emulator.

Each side of the emulator hangs its own store here (calendar events, identity, subscriptions,
control-plane settings). `--state FILE` persists and reloads it (see persistence.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulators.msgraph.calendar.delta import DeltaEngine
from emulators.msgraph.calendar.ids import IdForms
from emulators.msgraph.calendar.store import CalendarStore
from emulators.msgraph.changes import ChangeFeed
from emulators.msgraph.clock import Clock
from emulators.msgraph.contract import ContractCheck
from emulators.msgraph.directory import Directory
from emulators.msgraph.faults import FaultInjector
from emulators.msgraph.identity.service import IdentityService
from emulators.msgraph.requestlog import RequestLog
from emulators.msgraph.subscriptions.service import SubscriptionService
from emulators.msgraph.throttling import Throttle


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
    # Control-plane knobs (see control/): request log, injected faults, throttling limits.
    request_log: RequestLog = field(default_factory=RequestLog)
    faults: FaultInjector = field(default_factory=FaultInjector)
    throttle: Throttle = field(default_factory=Throttle)
    # Every /v1.0 answer checked against the CSDL types (contract.py); violations kept here.
    contract: ContractCheck = field(default_factory=ContractCheck.from_env)
    # Subscriptions and webhook delivery; listens on `changes`.
    subscriptions: SubscriptionService = field(init=False)
    # Every mailbox's events, and the calendarView delta engine over them.
    calendars: CalendarStore = field(init=False)
    calendar_delta: DeltaEngine = field(init=False)

    def __post_init__(self) -> None:
        self.identity = IdentityService(self.clock, self.directory, lambda: self.base_url)
        self.subscriptions = SubscriptionService(self.clock, self.directory, self.changes)
        if self.token_verifier is None:
            self.token_verifier = self.identity
        self.calendars = CalendarStore(self.clock, self.directory, self.changes)
        self.calendar_delta = DeltaEngine(self.calendars, self.clock)
        self.subscriptions.etag_of = self.calendars.etag_of
        self.subscriptions.id_of = self.event_id_as

    def event_id_as(self, event_id: str, immutable: bool) -> str:
        """A stored event id in the form a notification of that subscription carries."""
        return IdForms(self.calendars.moves, immutable).outward(event_id)
