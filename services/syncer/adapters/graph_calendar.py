"""The Graph calls the syncer makes: calendarView delta rounds and subscriptions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from services.syncer.domain.window import Window
from shared.graph.client import GraphClient
from shared.graph.errors import GraphNotFound
from shared.graph.event import GraphEvent, RemovedEntry, parse_delta_item

# The allowed fields only (no body): what the syncer may read of one event.
EVENT_SELECT = ",".join(
    info.alias or name for name, info in GraphEvent.model_fields.items() if name != "id"
)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RoundResult:
    # Parsed through the allow-list page by page: a round of a large calendar never holds
    # its raw pages (bodies included) until the last one came.
    items: list[GraphEvent | RemovedEntry]
    delta_link: str
    pages: int
    request_ids: list[str]


class GraphCalendar:
    def __init__(self, client: GraphClient) -> None:
        self._client = client

    async def delta_round(
        self, connection_id: str, delta_link: str | None, window: Window, page_size: int
    ) -> RoundResult:
        """All pages of one round: from the deltaLink, or from scratch for the window."""
        headers = {"Prefer": f"odata.maxpagesize={page_size}"}
        url: str | None = delta_link or "/me/calendarView/delta"
        params = (
            None
            if delta_link
            else {"startDateTime": _iso(window.start), "endDateTime": _iso(window.end)}
        )
        items: list[GraphEvent | RemovedEntry] = []
        request_ids: list[str] = []
        pages = 0
        while url is not None:
            response = await self._client.get(
                connection_id, url, operation="calendar_delta", params=params, headers=headers
            )
            pages += 1
            params = None
            if response.request_id:
                request_ids.append(response.request_id)
            value = response.body.get("value")
            if not isinstance(value, list):
                raise ValueError("a delta page without a value array")
            items.extend(parse_delta_item(v) for v in value if isinstance(v, dict))
            if "@odata.deltaLink" in response.body:
                return RoundResult(
                    items, str(response.body["@odata.deltaLink"]), pages, request_ids
                )
            next_link = response.body.get("@odata.nextLink")
            if not next_link:
                raise ValueError("a delta page with neither nextLink nor deltaLink")
            url = str(next_link)
        raise AssertionError("unreachable")

    async def event(self, connection_id: str, event_id: str) -> dict[str, Any] | None:
        """One event's allowed fields (re-read when a roster change may make it a 1:1:
        the syncer kept only a hash of it); None if it is gone."""
        try:
            response = await self._client.get(
                connection_id,
                f"/me/events/{quote(event_id, safe='')}",
                operation="event_get",
                params={"$select": EVENT_SELECT},
            )
        except GraphNotFound:
            return None
        return response.body

    async def create_subscription(
        self,
        connection_id: str,
        *,
        notification_url: str,
        lifecycle_url: str,
        client_state: str,
        expires: datetime,
    ) -> tuple[str, datetime, str | None]:
        response = await self._client.request(
            connection_id,
            "POST",
            "/subscriptions",
            operation="subscription_create",
            json={
                "changeType": "created,updated,deleted",
                "notificationUrl": notification_url,
                "lifecycleNotificationUrl": lifecycle_url,
                "resource": "me/events",
                "expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
                "clientState": client_state,
            },
        )
        body = response.body
        return str(body["id"]), _parse(body["expirationDateTime"]), response.request_id

    async def renew_subscription(
        self, connection_id: str, subscription_id: str, expires: datetime
    ) -> tuple[datetime, str | None]:
        response = await self._client.request(
            connection_id,
            "PATCH",
            f"/subscriptions/{subscription_id}",
            operation="subscription_renew",
            json={"expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")},
        )
        return _parse(response.body["expirationDateTime"]), response.request_id

    async def delete_subscription(self, connection_id: str, subscription_id: str) -> str | None:
        response = await self._client.request(
            connection_id,
            "DELETE",
            f"/subscriptions/{subscription_id}",
            operation="subscription_delete",
        )
        return response.request_id


def _parse(value: str) -> datetime:
    text = value.rstrip("Z")
    head, _, fraction = text.partition(".")
    from datetime import UTC

    return datetime.fromisoformat(head + (f".{fraction[:6]}" if fraction else "")).replace(
        tzinfo=UTC
    )
