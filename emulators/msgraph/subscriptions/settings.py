"""Tunables of change-notification delivery; tests scale the real-world numbers down."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any


@dataclass
class NotificationSettings:
    # Graph: Outlook message/event/contact subscriptions live at most 4230 minutes (under 3
    # days): "subscription resource type", Maximum length of subscription per resource type
    # (https://learn.microsoft.com/graph/api/resources/subscription). Beyond it a create or
    # renew is refused with 400 ExtensionError "Subscription expiration can only be 4230
    # minutes in the future." Configurable for the day Microsoft changes the table.
    max_lifetime: timedelta = timedelta(minutes=4230)
    max_per_mailbox: int = 1000  # across all apps
    validation_timeout_seconds: float = 10.0
    # Delivery: items queued within this window to one URL go out as one batch.
    batch_window_seconds: float = 0.05
    max_batch_size: int = 100
    # Retries: exponential backoff base * 2**attempt; Graph retries for up to 4 hours.
    retry_base_seconds: float = 0.2
    retry_max_attempts: int = 8
    delivery_timeout_seconds: float = 10.0
    # Graph requires https; the emulator also accepts http to loopback receivers, and to any
    # host when this is set (docker networks in the demo).
    allow_http_any_host: bool = False
    # reauthorizationRequired is sent once when less than this remains before expiry.
    reauthorize_before: timedelta = timedelta(hours=1)
    # Graph just deletes an expired subscription; set to also send subscriptionRemoved.
    removed_notice_on_expiry: bool = False
    # TLS verification of https receivers: True, False, or a CA bundle path.
    verify: bool | str = True

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["max_lifetime"] = self.max_lifetime.total_seconds() / 60
        data["reauthorize_before"] = self.reauthorize_before.total_seconds() / 60
        return data

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a control-API patch; durations are given in minutes."""
        for key, value in changes.items():
            if not hasattr(self, key):
                raise KeyError(key)
            if key in ("max_lifetime", "reauthorize_before"):
                value = timedelta(minutes=float(value))
            setattr(self, key, value)
