"""SubscriptionService: subscriptions per app and mailbox, and what happens to them over time.

It listens on `state.changes` for event changes and queues change notifications for the
matching, unexpired subscriptions; the emulator clock decides expiry.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from emulators.msgraph.changes import ChangeFeed, EventChange
from emulators.msgraph.clock import Clock
from emulators.msgraph.directory import Directory
from emulators.msgraph.errors import GraphError
from emulators.msgraph.principal import Principal
from emulators.msgraph.subscriptions.delivery import Dispatcher
from emulators.msgraph.subscriptions.models import Subscription, graph_datetime
from emulators.msgraph.subscriptions.requests import (
    bad_request,
    check_url,
    mailbox_of,
    parse_change_type,
    parse_client_state,
    parse_expiration,
)
from emulators.msgraph.subscriptions.settings import NotificationSettings
from emulators.msgraph.subscriptions.transport import outbound_client
from emulators.msgraph.subscriptions.validation import validate_endpoint

LifecycleEvent = Literal["reauthorizationRequired", "subscriptionRemoved", "missed"]


def _not_found(subscription_id: str) -> GraphError:
    return GraphError(
        404, "ResourceNotFound", f"The object '{subscription_id}' doesn't exist or was deleted."
    )


class SubscriptionService:
    def __init__(self, clock: Clock, directory: Directory, changes: ChangeFeed) -> None:
        self._clock = clock
        self._directory = directory
        self.settings = NotificationSettings()
        self.subscriptions: dict[str, Subscription] = {}
        self.dispatcher = Dispatcher(self.settings, clock.now, self._missed)
        # Etags of notified events: Graph sends the event's changeKey-based ETag.
        self.etag_of: Callable[[str, str], str | None] = lambda user_id, event_id: None
        # A stored event id as a subscription sees it: (id, immutable ids?) → id on the wire.
        self.id_of: Callable[[str, bool], str] = lambda event_id, immutable: event_id
        changes.subscribe(self.on_change)

    # --- API operations ----------------------------------------------------------------------

    async def create(
        self, principal: Principal, body: dict[str, Any], *, immutable_ids: bool = False
    ) -> Subscription:
        now = self._clock.now()
        change_type = parse_change_type(body.get("changeType"))
        notification_url = check_url(body.get("notificationUrl"), "notificationUrl", self.settings)
        lifecycle_url = body.get("lifecycleNotificationUrl")
        if lifecycle_url is not None:
            lifecycle_url = check_url(lifecycle_url, "lifecycleNotificationUrl", self.settings)
        mailbox = self._mailbox(mailbox_of(body.get("resource"), principal), principal)
        expiration = parse_expiration(body.get("expirationDateTime"), now, self.settings)
        client_state = parse_client_state(body.get("clientState"))
        self.sweep()
        active = sum(1 for s in self.subscriptions.values() if s.mailbox_user_id == mailbox)
        if active >= self.settings.max_per_mailbox:
            raise GraphError(
                403,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: Forbidden; Reason: The number of "
                f"subscriptions for this mailbox has reached the limit of "
                f"{self.settings.max_per_mailbox}.]",
            )
        await self._validate(notification_url)
        if lifecycle_url is not None:
            await self._validate(lifecycle_url)
        subscription = Subscription(
            id=str(uuid.uuid4()),
            resource=str(body["resource"]),
            mailbox_user_id=mailbox,
            tenant_id=principal.tenant_id,
            change_type=change_type,
            notification_url=notification_url,
            lifecycle_notification_url=lifecycle_url,
            expiration=expiration,
            client_state=client_state,
            application_id=principal.client_id,
            creator_id=principal.user_id,
            latest_supported_tls_version=str(body.get("latestSupportedTlsVersion") or "v1_2"),
            immutable_ids=immutable_ids,
        )
        self.subscriptions[subscription.id] = subscription
        return subscription

    def get(self, principal: Principal, subscription_id: str) -> Subscription:
        self.sweep()
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None or not self._owns(principal, subscription):
            raise _not_found(subscription_id)
        return subscription

    def list_for(self, principal: Principal) -> list[Subscription]:
        """Delegated callers see the subscriptions their app created for the signed-in user."""
        self.sweep()
        return [s for s in self.subscriptions.values() if self._owns(principal, s)]

    async def update(
        self, principal: Principal, subscription_id: str, body: dict[str, Any]
    ) -> Subscription:
        subscription = self.get(principal, subscription_id)
        expiration = subscription.expiration
        if "expirationDateTime" in body:
            expiration = parse_expiration(
                body["expirationDateTime"], self._clock.now(), self.settings
            )
        url = subscription.notification_url
        if "notificationUrl" in body and body["notificationUrl"] != url:
            url = check_url(body["notificationUrl"], "notificationUrl", self.settings)
            await self._validate(url)
        unsupported = set(body) - {"expirationDateTime", "notificationUrl"}
        if unsupported:
            raise bad_request(f"Property '{sorted(unsupported)[0]}' can't be updated.")
        subscription.expiration = expiration
        subscription.notification_url = url
        subscription.reauthorization_sent = False  # renewing also reauthorizes
        return subscription

    def delete(self, principal: Principal, subscription_id: str) -> None:
        self.get(principal, subscription_id)
        del self.subscriptions[subscription_id]

    def reauthorize(self, principal: Principal, subscription_id: str) -> None:
        self.get(principal, subscription_id).reauthorization_sent = False

    # --- notifications -----------------------------------------------------------------------

    def on_change(self, change: EventChange) -> None:
        """ChangeFeed listener: queue one change notification per matching subscription."""
        now = self._clock.now()
        etag = self.etag_of(change.user_id, change.event_id) or self._etag()
        for subscription in list(self.subscriptions.values()):
            if subscription.mailbox_user_id != change.user_id or subscription.expiration <= now:
                continue
            if change.change_type not in subscription.change_types:
                continue
            event_id = self.id_of(change.event_id, subscription.immutable_ids)
            resource = f"Users/{change.user_id}/Events/{event_id}"
            item: dict[str, Any] = {
                "subscriptionId": subscription.id,
                "subscriptionExpirationDateTime": graph_datetime(subscription.expiration),
                "changeType": change.change_type,
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "@odata.etag": etag,
                    "id": event_id,
                },
                "clientState": subscription.client_state,
                "tenantId": subscription.tenant_id,
            }
            self.dispatcher.enqueue(
                subscription.notification_url, item, subscription.id, lifecycle=False
            )

    def send_lifecycle(self, subscription: Subscription, event: LifecycleEvent) -> bool:
        """Queue a lifecycle notification; False if the subscription has no lifecycle URL."""
        if subscription.lifecycle_notification_url is None:
            return False
        item = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": graph_datetime(subscription.expiration),
            "tenantId": subscription.tenant_id,
            "clientState": subscription.client_state,
            "lifecycleEvent": event,
        }
        self.dispatcher.enqueue(
            subscription.lifecycle_notification_url, item, subscription.id, lifecycle=True
        )
        return True

    def trigger(self, subscription_id: str, event: LifecycleEvent) -> bool:
        """Control API: fire a lifecycle event; `subscriptionRemoved` also removes it."""
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            raise KeyError(subscription_id)
        sent = self.send_lifecycle(subscription, event)
        if event == "subscriptionRemoved":
            del self.subscriptions[subscription_id]
        return sent

    def _missed(self, subscription_id: str) -> None:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is not None:
            self.send_lifecycle(subscription, "missed")

    # --- time --------------------------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Drop expired subscriptions (Graph deletes them silently); returns their ids."""
        now = self._clock.now()
        expired = [s for s in self.subscriptions.values() if s.expiration <= now]
        for subscription in expired:
            if self.settings.removed_notice_on_expiry:
                self.send_lifecycle(subscription, "subscriptionRemoved")
            del self.subscriptions[subscription.id]
        return [s.id for s in expired]

    def tick(self) -> dict[str, list[str]]:
        """Expire what is due and send reauthorizationRequired to those about to expire."""
        removed = self.sweep()
        now = self._clock.now()
        reauthorize: list[str] = []
        for subscription in self.subscriptions.values():
            soon = subscription.expiration - now <= self.settings.reauthorize_before
            if soon and not subscription.reauthorization_sent:
                subscription.reauthorization_sent = True
                if self.send_lifecycle(subscription, "reauthorizationRequired"):
                    reauthorize.append(subscription.id)
        return {"expired": removed, "reauthorizationRequired": reauthorize}

    # --- helpers -----------------------------------------------------------------------------

    def _mailbox(self, id_or_upn: str, principal: Principal) -> str:
        user = self._directory.find_user(id_or_upn)
        if user is None:
            raise GraphError(404, "ResourceNotFound", f"User '{id_or_upn}' not found.")
        if user.id != principal.user_id:
            raise GraphError(403, "ExtensionError", "Access is denied to the requested mailbox.")
        if not principal.can_read_calendars():
            raise GraphError(403, "ExtensionError", "Access is denied. Check credentials.")
        return user.id

    @staticmethod
    def _owns(principal: Principal, subscription: Subscription) -> bool:
        return (
            subscription.application_id == principal.client_id
            and subscription.creator_id == principal.user_id
        )

    async def _validate(self, url: str) -> None:
        timeout = self.settings.validation_timeout_seconds
        async with outbound_client(self.settings.verify, timeout) as http:
            await validate_endpoint(url, http, timeout)

    @staticmethod
    def _etag() -> str:
        return 'W/"' + base64.b64encode(uuid.uuid4().bytes).decode("ascii") + '"'

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"subscriptions": [s.to_dict() for s in self.subscriptions.values()]}

    def load_dict(self, data: dict[str, Any]) -> None:
        self.subscriptions = {
            s["id"]: Subscription.from_dict(s) for s in data.get("subscriptions", [])
        }

    def reset(self) -> None:
        self.subscriptions.clear()
        self.dispatcher.clear()

    def expires_at(self, subscription_id: str) -> datetime | None:
        subscription = self.subscriptions.get(subscription_id)
        return subscription.expiration if subscription else None
