"""The subscription entity, serialized with exactly the v1.0 metadata's property names."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


def graph_datetime(moment: datetime) -> str:
    """Graph's DateTimeOffset rendering: UTC with seven fractional digits and `Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass
class Subscription:
    id: str
    resource: str  # as the client sent it, e.g. "me/events"
    mailbox_user_id: str  # the mailbox `resource` points at
    tenant_id: str
    change_type: str  # "created,updated,deleted"
    notification_url: str
    expiration: datetime
    application_id: str
    creator_id: str
    lifecycle_notification_url: str | None = None
    client_state: str | None = None
    latest_supported_tls_version: str = "v1_2"
    # Lifecycle bookkeeping: whether reauthorizationRequired was already sent for this term.
    reauthorization_sent: bool = field(default=False)
    # Created with `Prefer: IdType="ImmutableId"`: its notifications carry immutable ids; one
    # created without keeps default ids for life (learn.microsoft.com/graph/outlook-immutable-id,
    # "Immutable ID with change notifications": delete and recreate it to switch).
    immutable_ids: bool = field(default=False)

    @property
    def change_types(self) -> set[str]:
        return {part.strip() for part in self.change_type.split(",") if part.strip()}

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_notification_url,
            "expirationDateTime": graph_datetime(self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": self.latest_supported_tls_version,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["expiration"] = self.expiration.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Subscription:
        return cls(**{**data, "expiration": datetime.fromisoformat(data["expiration"])})
