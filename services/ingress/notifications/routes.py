"""`POST /graph/notifications` and `POST /graph/lifecycle`: Graph's webhooks.

Answer fast: validation tokens are echoed at once; batches are parsed, each item checked,
accepted items published to Kafka, and 202 is answered only after the broker acknowledged
(so nothing Graph considers delivered can be lost). No Graph call, no slow work inline.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import Counter
from pydantic import ValidationError

from services.ingress.notifications.directory import SubscriptionDirectory
from services.ingress.notifications.domain import (
    ChangeBatch,
    LifecycleBatch,
    change_types,
    verify,
)
from shared.audit import AuditLog
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.contracts.envelope import Envelope
from shared.contracts.notifications import (
    ChangeNotice,
    GraphChangeNotified,
    GraphLifecycleNotified,
    LifecycleNotice,
)
from shared.messaging.publisher import Publisher

router = APIRouter(tags=["graph webhooks"])
NOTIFICATIONS = Counter(
    "smvue_graph_notifications_total", "Graph notification items by outcome", ["kind", "outcome"]
)


def _deps(request: Request) -> tuple[SubscriptionDirectory, Publisher, AuditLog]:
    state = request.app.state
    return state.subscription_directory, state.publisher, state.audit


def _validation(request: Request) -> Response | None:
    token = request.query_params.get("validationToken")
    if token is None:
        return None
    return PlainTextResponse(token, status_code=200)


async def _json_body(request: Request) -> object:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest("the body is not valid JSON") from exc


class _BadRequest(Exception):
    pass


def _bad(reason: str) -> JSONResponse:
    return JSONResponse({"detail": reason}, status_code=400)


@router.post("/graph/notifications", response_model=None)
async def change_notifications(request: Request) -> Response:
    if (answer := _validation(request)) is not None:
        return answer
    directory, publisher, audit = _deps(request)
    try:
        batch = ChangeBatch.model_validate(await _json_body(request))
    except _BadRequest as exc:
        return _bad(str(exc))
    except ValidationError as exc:
        return _bad(f"not a change notification collection: {exc.errors()[0]['msg']}")
    now = datetime.now(UTC)
    records: list[Envelope] = []
    for item in batch.value:
        verdict = verify(item, directory.get(item.subscription_id))
        if verdict.subscription is None:
            await _reject(audit, "change", item.subscription_id, str(verdict.rejection))
            continue
        for change_type in change_types(item):
            if change_type not in ("created", "updated", "deleted"):
                continue
            notice = ChangeNotice(
                connection_id=verdict.subscription.connection_id,
                subscription_id=item.subscription_id,
                change_type=change_type,
                resource_id=item.resource_data.id if item.resource_data else None,
                tenant_id=item.tenant_id,
                received_at=now,
            )
            records.append(GraphChangeNotified.build(key=notice.connection_id, payload=notice))
            NOTIFICATIONS.labels("change", "accepted").inc()
    await publisher.publish_all(records)
    return Response(status_code=202)


@router.post("/graph/lifecycle", response_model=None)
async def lifecycle_notifications(request: Request) -> Response:
    if (answer := _validation(request)) is not None:
        return answer
    directory, publisher, audit = _deps(request)
    try:
        batch = LifecycleBatch.model_validate(await _json_body(request))
    except _BadRequest as exc:
        return _bad(str(exc))
    except ValidationError as exc:
        return _bad(f"not a lifecycle notification collection: {exc.errors()[0]['msg']}")
    now = datetime.now(UTC)
    records: list[Envelope] = []
    for item in batch.value:
        verdict = verify(item, directory.get(item.subscription_id))
        if verdict.subscription is None:
            await _reject(audit, "lifecycle", item.subscription_id, str(verdict.rejection))
            continue
        notice = LifecycleNotice(
            connection_id=verdict.subscription.connection_id,
            subscription_id=item.subscription_id,
            lifecycle_event=item.lifecycle_event,
            subscription_expires_at=item.subscription_expiration,
            received_at=now,
        )
        records.append(GraphLifecycleNotified.build(key=notice.connection_id, payload=notice))
        NOTIFICATIONS.labels("lifecycle", "accepted").inc()
    await publisher.publish_all(records)
    return Response(status_code=202)


async def _reject(audit: AuditLog, kind: str, subscription_id: str, reason: str) -> None:
    """Dropped, counted, audited; never published."""
    NOTIFICATIONS.labels(kind, reason).inc()
    await audit.record(
        AuditOperation.NOTIFICATION_REJECTED,
        AuditOutcome.REFUSED,
        target_ids=[subscription_id],
        detail=reason,
    )
