"""The read-only query API for the SMVue backend (service-authenticated): the dashboard's
upcoming 1:1s, cadence per team member, and the Integrations card.

Query parameters are parsed here, not by FastAPI's validation, so a bad one is a 400 with
a reason like every other input error of the range, not a 422.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from services.projector.api_models import (
    CadenceList,
    CadenceView,
    CardNotice,
    ConnectionView,
    OneOnOneList,
    OneOnOneView,
    PersonView,
    Problem,
)
from services.projector.domain.card import card_for
from services.projector.handlers import PairCadence, Queries
from shared.contracts.meetings import MeetingSource
from shared.mongo import Document

DEFAULT_RANGE = timedelta(days=30)
MAX_RANGE = timedelta(days=400)
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Bad query parameters (the reason is in `detail`)."},
    401: {"model": Problem, "description": "No valid service bearer token."},
}


def parse_instant(value: str | None, name: str) -> datetime | None:
    """ISO 8601; naive means UTC. A `+` decoded to a space in a query string is tolerated."""
    if value is None or value == "":
        return None
    text = value.strip().replace(" ", "+")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"`{name}` is not an ISO 8601 date-time: {value[:40]!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def resolve_range(
    raw_from: str | None, raw_to: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """Defaults: from now, to 30 days after `from`. At most 400 days; `from` <= `to`."""
    start = parse_instant(raw_from, "from") or now
    end = parse_instant(raw_to, "to") or start + DEFAULT_RANGE
    if start > end:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "`from` must not be after `to`")
    if end - start > MAX_RANGE:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"the range may span at most {MAX_RANGE.days} days"
        )
    return start, end


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def one_on_one_view(doc: Document) -> OneOnOneView:
    member = doc.get("member") or {}
    return OneOnOneView(
        meeting_id=doc["_id"],
        member=PersonView(email=member.get("email", ""), display_name=member.get("display_name")),
        member_id=doc.get("member_id"),
        subject=doc.get("subject", ""),
        start=_utc(doc["start"]),
        end=_utc(doc["end"]),
        original_time_zone=doc.get("original_time_zone"),
        location=doc.get("location"),
        join_url=doc.get("join_url"),
        event_type=doc["event_type"],
        series_master_id=doc.get("series_master_id"),
        is_cancelled=bool(doc.get("is_cancelled")),
        # Where the meeting was made: once SMVue made it, the syncer's later snapshot of
        # it (source outlook, it can't tell) doesn't change that (issue 9).
        source=MeetingSource.SMVUE if doc.get("created_in_smvue") else doc["source"],
        created_in_smvue=bool(doc.get("created_in_smvue")),
        smvue_command_id=doc.get("smvue_command_id"),
        version=doc["version"],
    )


def cadence_view(computed: PairCadence) -> CadenceView:
    cadence = computed.cadence
    return CadenceView(
        member_email=computed.pair.member_email,
        member_name=computed.member.display_name,
        member_id=computed.member.member_id,
        last_held=cadence.last_held,
        next_scheduled=cadence.next_scheduled,
        held_last_90_days=cadence.held_last_90_days,
        median_interval_days=cadence.median_interval_days,
        overdue_horizon_days=cadence.overdue_horizon_days,
        overdue=cadence.overdue,
    )


_DERIVED = ("connection_id", "syncing", "can_schedule", "notice", "action")


def connection_view(doc: Document) -> ConnectionView:
    fields = {name: doc.get(name) for name in ConnectionView.model_fields if name not in _DERIVED}
    card = card_for(doc)
    notice = (
        None
        if card.notice is None
        else CardNotice(code=card.notice.code, message=card.notice.message, hint=card.notice.hint)
    )
    return ConnectionView.model_validate(
        {
            **fields,
            "connection_id": doc["_id"],
            "syncing": card.syncing,
            "can_schedule": card.can_schedule,
            "notice": notice,
            "action": None if card.action is None else card.action.value,
        }
    )


def query_router(queries: Queries, auth: Callable[..., None]) -> APIRouter:
    router = APIRouter(
        prefix="/v1", dependencies=[Depends(auth)], tags=["read model"], responses=ERRORS
    )

    @router.get(
        "/managers/{manager_id}/one-on-ones",
        response_model=OneOnOneList,
        summary="The manager's 1:1s in a time range (the dashboard)",
    )
    async def one_on_ones(
        manager_id: str,
        raw_from: Annotated[
            str | None, Query(alias="from", description="ISO 8601; default now.")
        ] = None,
        raw_to: Annotated[
            str | None, Query(alias="to", description="ISO 8601; default `from` + 30 days.")
        ] = None,
    ) -> OneOnOneList:
        """Meetings overlapping [from, to), by start. Cancelled or deleted in Outlook (or
        cancelled from SMVue): still listed, flagged `is_cancelled` (cadence history); no
        longer a 1:1 (a third person, private, off the team): not listed."""
        start, end = resolve_range(raw_from, raw_to, queries.clock())
        docs = await queries.one_on_ones(manager_id, start, end)
        return OneOnOneList(
            manager_id=manager_id,
            range_from=start,
            range_to=end,
            one_on_ones=[one_on_one_view(doc) for doc in docs],
        )

    @router.get(
        "/managers/{manager_id}/cadence",
        response_model=CadenceList,
        summary="Cadence per team member, relative to now",
    )
    async def cadence(manager_id: str) -> CadenceList:
        """Last held, next scheduled, held in 90 days, median interval, overdue - per pair."""
        now = queries.clock()
        pairs = await queries.cadence(manager_id, now)
        return CadenceList(
            manager_id=manager_id,
            computed_at=now,
            members=[cadence_view(computed) for computed in pairs],
        )

    @router.get(
        "/connections/{user_id}",
        response_model=ConnectionView,
        summary="The user's Outlook Calendar connection (Settings > Integrations)",
        responses={404: {"model": Problem, "description": "No connection for this user."}},
    )
    async def connection(user_id: str) -> ConnectionView:
        """Account, scopes, state, last sync and last error, as of the latest snapshot."""
        doc = await queries.connection(user_id)
        if doc is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, "no Outlook Calendar connection for this user"
            )
        return connection_view(doc)

    return router
