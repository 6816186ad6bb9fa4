"""The Graph calls the writer makes on the manager's own calendar (`/me`, their token)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from services.writer.domain.outlook_event import TAG_EXPAND, TEAMS_PROVIDER
from shared.graph.client import GraphClient


@dataclass(frozen=True)
class Answer:
    """Graph's JSON answer and its request id (for the audit log)."""

    body: dict[str, Any]
    request_id: str | None


def _event_path(event_id: str) -> str:
    return f"/me/events/{quote(event_id, safe='')}"


class OutlookCalendar:
    def __init__(self, client: GraphClient) -> None:
        self._client = client

    async def allows_teams(self, connection_id: str) -> bool:
        """Can this calendar have Teams meetings (the documented way to know beforehand)?"""
        response = await self._client.get(
            connection_id,
            "/me/calendar",
            operation="calendar_get",
            params={"$select": "allowedOnlineMeetingProviders"},
        )
        providers = response.body.get("allowedOnlineMeetingProviders") or []
        return isinstance(providers, list) and TEAMS_PROVIDER in providers

    async def create(self, connection_id: str, event: dict[str, Any]) -> Answer:
        response = await self._client.request(
            connection_id, "POST", "/me/events", operation="event_create", json=event
        )
        return Answer(response.body, response.request_id)

    async def read(self, connection_id: str, event_id: str) -> Answer:
        """The event with SMVue's tag expanded (to check it is ours before writing)."""
        response = await self._client.get(
            connection_id,
            _event_path(event_id),
            operation="event_get",
            params={"$expand": TAG_EXPAND},
        )
        return Answer(response.body, response.request_id)

    async def update(
        self, connection_id: str, event_id: str, patch: dict[str, Any], etag: str
    ) -> Answer:
        response = await self._client.request(
            connection_id,
            "PATCH",
            _event_path(event_id),
            operation="event_update",
            json=patch,
            headers={"If-Match": etag},
        )
        return Answer(response.body, response.request_id)

    async def cancel(self, connection_id: str, event_id: str, comment: str | None) -> Answer:
        """The cancel action (not DELETE): attendees get a cancellation with the comment."""
        response = await self._client.request(
            connection_id,
            "POST",
            f"{_event_path(event_id)}/cancel",
            operation="event_cancel",
            json={"Comment": comment or ""},
        )
        return Answer(response.body, response.request_id)
