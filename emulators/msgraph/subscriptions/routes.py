"""/v1.0/subscriptions: create (with validation handshake), get, list, renew, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from emulators.msgraph.auth import require_principal
from emulators.msgraph.calendar.ids import IMMUTABLE_APPLIED, asks_immutable, parse_prefer
from emulators.msgraph.errors import GraphError
from emulators.msgraph.principal import Principal
from emulators.msgraph.state import EmulatorState
from emulators.msgraph.subscriptions.service import SubscriptionService

CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
router = APIRouter(prefix="/v1.0/subscriptions", include_in_schema=False)
CONTEXT = "https://graph.microsoft.com/v1.0/$metadata#subscriptions"


def _service(request: Request) -> SubscriptionService:
    state: EmulatorState = request.app.state.emulator
    return state.subscriptions


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from exc
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
    return body


@router.post("")
async def create(request: Request, principal: CurrentPrincipal) -> Response:
    immutable = asks_immutable(parse_prefer(request.headers.getlist("prefer")))
    subscription = await _service(request).create(
        principal, await _json(request), immutable_ids=immutable
    )
    body = {"@odata.context": f"{CONTEXT}/$entity", **subscription.to_graph()}
    headers = {"Preference-Applied": IMMUTABLE_APPLIED} if immutable else None
    return JSONResponse(body, status_code=201, headers=headers)


@router.get("")
async def list_subscriptions(request: Request, principal: CurrentPrincipal) -> Response:
    items = [s.to_graph() for s in _service(request).list_for(principal)]
    return JSONResponse({"@odata.context": CONTEXT, "value": items})


@router.get("/{subscription_id}")
async def get_one(subscription_id: str, request: Request, principal: CurrentPrincipal) -> Response:
    subscription = _service(request).get(principal, subscription_id)
    return JSONResponse({"@odata.context": f"{CONTEXT}/$entity", **subscription.to_graph()})


@router.patch("/{subscription_id}")
async def renew(subscription_id: str, request: Request, principal: CurrentPrincipal) -> Response:
    service = _service(request)
    subscription = await service.update(principal, subscription_id, await _json(request))
    return JSONResponse({"@odata.context": f"{CONTEXT}/$entity", **subscription.to_graph()})


@router.delete("/{subscription_id}")
async def delete(subscription_id: str, request: Request, principal: CurrentPrincipal) -> Response:
    _service(request).delete(principal, subscription_id)
    return Response(status_code=204)


@router.post("/{subscription_id}/reauthorize")
async def reauthorize(
    subscription_id: str, request: Request, principal: CurrentPrincipal
) -> Response:
    _service(request).reauthorize(principal, subscription_id)
    return Response(status_code=204)
