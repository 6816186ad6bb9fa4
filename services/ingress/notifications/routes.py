"""`POST /graph/notifications` and `POST /graph/lifecycle`: Graph's webhooks.

Answer fast: validation tokens are echoed at once; batches are parsed, each item checked,
accepted items published to Kafka, and 202 is answered only after the broker acknowledged
(so nothing Graph considers delivered can be lost). No Graph call, no slow work inline.
When the ingress can't decide or can't queue yet (directory still loading or its follower
restarting, broker down, an item whose subscription it doesn't know even after a grace) it
answers 503 + Retry-After: Graph delivers again later (for up to 4 hours: "Receive change
notifications through webhooks", learn.microsoft.com), nothing is lost. The items it could
verify are published first (a redelivery repeats them; the syncer coalesces). Only items it
knows to be bad are dropped (and audited): a clientState that doesn't match, or a
subscription it saw end.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from services.ingress.notifications.directory import SubscriptionDirectory
from services.ingress.notifications.domain import (
    ChangeBatch,
    ChangeItem,
    LifecycleBatch,
    LifecycleItem,
    Rejection,
    Verdict,
    change_notices,
    lifecycle_notice,
    verify,
)
from shared.audit import AuditLog
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.contracts.envelope import Envelope
from shared.contracts.notifications import GraphChangeNotified, GraphLifecycleNotified
from shared.contracts.subscriptions import SubscriptionInfo
from shared.messaging.publisher import Publisher
from shared.observability.logging import get_logger

log = get_logger(__name__)
_Batch = TypeVar("_Batch", bound=BaseModel)
_Item = TypeVar("_Item", ChangeItem, LifecycleItem)
router = APIRouter(tags=["graph webhooks"])
NOTIFICATIONS = Counter(
    "smvue_graph_notifications_total", "Graph notification items by outcome", ["kind", "outcome"]
)
UNKNOWN_SUBSCRIPTION_GRACE = 2.0  # seconds to wait for a just-published activation
MAX_AUDITED_REJECTIONS = 10  # per request: a flood of forgeries can't flood the audit log


class _Unavailable(Exception):
    pass


def _validation(request: Request) -> Response | None:
    token = request.query_params.get("validationToken")
    if token is None:
        return None
    return PlainTextResponse(token, status_code=200)  # the decoded token, at once


async def _parse(request: Request, model: type[_Batch], what: str) -> _Batch | Response:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JSONResponse({"detail": "the body is not valid JSON"}, status_code=400)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse(
            {"detail": f"not a {what} collection: {where}: {first['msg']}"}, status_code=400
        )


async def _accept(
    request: Request,
    kind: str,
    items: Sequence[_Item],
    to_records: Callable[[_Item, SubscriptionInfo, datetime], list[Envelope]],
) -> Response:
    state = request.app.state
    directory: SubscriptionDirectory = state.subscription_directory
    publisher: Publisher = state.publisher
    audit: AuditLog = state.audit
    if not directory.ready:
        return _retry_later("the subscription directory is still loading")
    now = datetime.now(UTC)
    records: list[Envelope] = []
    rejected: list[tuple[str, str]] = []
    unverified = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + UNKNOWN_SUBSCRIPTION_GRACE  # one grace per request, not per item
    for item in items:
        grace = max(0.0, deadline - loop.time())
        ended = directory.ended(item.subscription_id)
        known = None if ended else await directory.lookup(item.subscription_id, grace)
        if known is None and not ended:
            NOTIFICATIONS.labels(kind, "unverified").inc()
            unverified += 1  # maybe just created: Graph must deliver it again
            continue
        verdict = verify(item, known)
        if known is None:
            verdict = Verdict(None, Rejection.ENDED_SUBSCRIPTION)
        if verdict.subscription is None:
            NOTIFICATIONS.labels(kind, str(verdict.rejection)).inc()
            rejected.append((item.subscription_id, str(verdict.rejection)))
            continue
        accepted = to_records(item, verdict.subscription, now)
        NOTIFICATIONS.labels(kind, "accepted").inc(len(accepted))
        records.extend(accepted)
    try:
        await publisher.publish_all(records)
        for subscription_id, reason in rejected[:MAX_AUDITED_REJECTIONS]:
            await audit.record(  # dropped, counted, audited; never published
                AuditOperation.NOTIFICATION_REJECTED,
                AuditOutcome.REFUSED,
                target_ids=[subscription_id],
                detail=f"{kind}: {reason}",
            )
    except Exception as exc:  # the broker didn't acknowledge: Graph must deliver again
        log.warning("notifications not queued", kind=kind, error=type(exc).__name__)
        return _retry_later("could not queue the notifications")
    if rejected:
        log.warning("notifications rejected", kind=kind, count=len(rejected))
    if unverified:
        log.warning("notifications of unknown subscriptions deferred", kind=kind, count=unverified)
        return _retry_later("a subscription is not known (yet): deliver again later")
    return Response(status_code=202)


def _retry_later(reason: str) -> Response:
    return JSONResponse({"detail": reason}, status_code=503, headers={"Retry-After": "5"})


def _change_records(item: ChangeItem, known: SubscriptionInfo, now: datetime) -> list[Envelope]:
    return [
        GraphChangeNotified.build(key=notice.connection_id, payload=notice)
        for notice in change_notices(item, known, now)
    ]


def _lifecycle_records(
    item: LifecycleItem, known: SubscriptionInfo, now: datetime
) -> list[Envelope]:
    notice = lifecycle_notice(item, known, now)
    return [GraphLifecycleNotified.build(key=notice.connection_id, payload=notice)]


@router.post("/graph/notifications", response_model=None)
async def change_notifications(request: Request) -> Response:
    if (answer := _validation(request)) is not None:
        return answer
    batch = await _parse(request, ChangeBatch, "change notification")
    if isinstance(batch, Response):
        return batch
    return await _accept(request, "change", batch.value, _change_records)


@router.post("/graph/lifecycle", response_model=None)
async def lifecycle_notifications(request: Request) -> Response:
    if (answer := _validation(request)) is not None:
        return answer
    batch = await _parse(request, LifecycleBatch, "lifecycle notification")
    if isinstance(batch, Response):
        return batch
    return await _accept(request, "lifecycle", batch.value, _lifecycle_records)
