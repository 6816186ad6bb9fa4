"""`/_emulator`: steer the emulator from tests, benchmarks and the demo (no auth: local only).

"Act as the user in Outlook" = POST /_emulator/tokens for that user, then call /v1.0 normally.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from emulators.msgraph.calendar.ids import IdForms, inward
from emulators.msgraph.calendar.store import not_found
from emulators.msgraph.control.schemas import (
    AdvanceIn,
    AppIn,
    CalendarSettingsIn,
    ControlsIn,
    FaultIn,
    LifecycleIn,
    PolicyIn,
    RevokeIn,
    TenantIn,
    TokenIn,
    UserIn,
)
from emulators.msgraph.control.views import tenant_json, user_json
from emulators.msgraph.directory import CONSUMERS_TENANT_ID, TenantPolicy
from emulators.msgraph.errors import GraphError
from emulators.msgraph.faults import FaultRule
from emulators.msgraph.identity.service import DEFAULT_CLIENT_ID
from emulators.msgraph.state import EmulatorState
from emulators.msgraph.subscriptions.models import graph_datetime

router = APIRouter(prefix="/_emulator", include_in_schema=False)


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _policy(body: PolicyIn) -> TenantPolicy:
    return TenantPolicy(**body.model_dump())


# --- directory ---------------------------------------------------------------------------------


@router.post("/tenants", status_code=201)
async def create_tenant(body: TenantIn, request: Request) -> dict[str, Any]:
    state = _state(request)
    if state.directory.resolve_tenant(body.domain) is not None:
        raise HTTPException(409, f"a tenant with domain {body.domain} exists")
    tenant = state.directory.add_tenant(body.name, body.domain, body.id, _policy(body.policy))
    return tenant_json(tenant)


@router.get("/tenants")
async def list_tenants(request: Request) -> list[dict[str, Any]]:
    return [tenant_json(t) for t in _state(request).directory.tenants.values()]


@router.put("/tenants/{tenant}/policy")
async def set_policy(tenant: str, body: PolicyIn, request: Request) -> dict[str, Any]:
    found = _state(request).directory.resolve_tenant(tenant)
    if found is None:
        raise HTTPException(404, f"unknown tenant {tenant}")
    found.policy = _policy(body)
    return tenant_json(found)


@router.post("/users", status_code=201)
async def create_user(body: UserIn, request: Request) -> dict[str, Any]:
    state = _state(request)
    lookup = CONSUMERS_TENANT_ID if body.tenant.lower() == "consumers" else body.tenant
    tenant = state.directory.resolve_tenant(lookup)
    if tenant is None:
        raise HTTPException(404, f"unknown tenant {body.tenant}")
    try:
        user = state.directory.add_user(
            tenant.id,
            body.email,
            body.display_name,
            teams_licence=body.teams_licence,
            time_zone=body.time_zone,
            user_id=body.id,
        )
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from exc
    return user_json(user)


@router.get("/users")
async def list_users(request: Request) -> list[dict[str, Any]]:
    return [user_json(u) for u in _state(request).directory.users.values()]


# --- identity ----------------------------------------------------------------------------------


@router.post("/apps", status_code=201)
async def create_app_registration(body: AppIn, request: Request) -> dict[str, Any]:
    app = _state(request).identity.register_app(
        client_id=body.client_id,
        client_secret=body.client_secret,
        redirect_uris=body.redirect_uris,
        display_name=body.display_name,
        api_permissions=body.api_permissions,
    )
    return app.to_dict()  # the secret is shown once, like the portal does


@router.get("/apps")
async def list_apps(request: Request) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in app.to_dict().items() if k != "client_secret"}
        for app in _state(request).identity.apps.values()
    ]


@router.post("/tokens")
async def mint_token(body: TokenIn, request: Request) -> dict[str, Any]:
    """An access token for a user without a browser ("act as the user in Outlook")."""
    state = _state(request)
    user = state.directory.find_user(body.user)
    if user is None:
        raise HTTPException(404, f"unknown user {body.user}")
    token = state.identity.mint_access_token(
        user.id, body.scopes, body.client_id or DEFAULT_CLIENT_ID
    )
    lifetime = int(state.identity.settings.access_token.total_seconds())
    return {"token_type": "Bearer", "access_token": token, "expires_in": lifetime}


@router.post("/users/{user}/revoke-refresh-tokens")
async def revoke_refresh_tokens(
    user: str, request: Request, body: RevokeIn | None = None
) -> dict[str, Any]:
    state = _state(request)
    found = state.directory.find_user(user)
    if found is None:
        raise HTTPException(404, f"unknown user {user}")
    client_id = body.client_id if body else None
    return {"revoked": state.identity.revoke_refresh_tokens(found.id, client_id)}


# --- faults, throttling, request log -----------------------------------------------------------


@router.post("/faults", status_code=201)
async def add_fault(body: FaultIn, request: Request) -> dict[str, Any]:
    return _state(request).faults.add(FaultRule(**body.model_dump())).to_json()


@router.get("/faults")
async def list_faults(request: Request) -> list[dict[str, Any]]:
    return [rule.to_json() for rule in _state(request).faults.rules]


@router.delete("/faults", status_code=204)
async def clear_faults(request: Request) -> Response:
    _state(request).faults.clear()
    return Response(status_code=204)


@router.delete("/faults/{fault_id}", status_code=204)
async def delete_fault(fault_id: str, request: Request) -> Response:
    if not _state(request).faults.remove(fault_id):
        raise HTTPException(404, f"unknown fault {fault_id}")
    return Response(status_code=204)


@router.get("/throttling")
async def get_throttling(request: Request) -> dict[str, Any]:
    return _state(request).throttle.limits.to_json()


@router.patch("/throttling")
async def set_throttling(body: dict[str, Any], request: Request) -> dict[str, Any]:
    throttle = _state(request).throttle
    try:
        throttle.update(body)
    except KeyError as exc:
        raise HTTPException(400, f"unknown limit {exc}") from exc
    return throttle.limits.to_json()


@router.get("/requests")
async def get_requests(
    request: Request,
    path_contains: str | None = None,
    mailbox: str | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    log = _state(request).request_log
    return [
        r.to_json() for r in log.query(path_contains=path_contains, mailbox=mailbox, limit=limit)
    ]


@router.delete("/requests", status_code=204)
async def clear_requests(request: Request) -> Response:
    _state(request).request_log.clear()
    return Response(status_code=204)


# --- subscriptions and notification delivery ---------------------------------------------------


@router.get("/subscriptions")
async def all_subscriptions(request: Request) -> list[dict[str, Any]]:
    """Every app's subscriptions (clientState withheld)."""
    state = _state(request)
    state.subscriptions.sweep()
    return [
        {**s.to_graph(), "clientState": None, "mailbox": s.mailbox_user_id}
        for s in state.subscriptions.subscriptions.values()
    ]


@router.post("/subscriptions/{subscription_id}/lifecycle")
async def fire_lifecycle(subscription_id: str, body: LifecycleIn, request: Request) -> Any:
    try:
        sent = _state(request).subscriptions.trigger(subscription_id, body.lifecycleEvent)
    except KeyError as exc:
        raise HTTPException(404, f"unknown subscription {subscription_id}") from exc
    return {"sent": sent}


@router.get("/notifications")
async def notifications(request: Request) -> dict[str, Any]:
    service = _state(request).subscriptions
    dispatcher = service.dispatcher
    return {
        "controls": dispatcher.controls.to_json(),
        "settings": service.settings.to_json(),
        "pending": dispatcher.pending,
        "delivered": dispatcher.stats.delivered,
        "dropped": dispatcher.stats.dropped,
        "gave_up": dispatcher.stats.gave_up,
        "attempts": [a.to_json() for a in dispatcher.stats.attempts[-200:]],
    }


@router.patch("/notifications/controls")
async def set_controls(body: ControlsIn, request: Request) -> dict[str, Any]:
    controls = _state(request).subscriptions.dispatcher.controls
    for key, value in body.model_dump(exclude_none=True).items():
        setattr(controls, key, value)
    return controls.to_json()


@router.patch("/notifications/settings")
async def set_settings(body: dict[str, Any], request: Request) -> dict[str, Any]:
    settings = _state(request).subscriptions.settings
    try:
        settings.update(body)
    except KeyError as exc:
        raise HTTPException(400, f"unknown setting {exc}") from exc
    return settings.to_json()


@router.post("/notifications/pause")
async def pause(request: Request) -> dict[str, Any]:
    dispatcher = _state(request).subscriptions.dispatcher
    dispatcher.pause()
    return dispatcher.controls.to_json()


@router.post("/notifications/flush")
async def flush(request: Request) -> dict[str, Any]:
    """Deliver everything queued (ignoring delays and pause) and answer when done."""
    dispatcher = _state(request).subscriptions.dispatcher
    await dispatcher.flush()
    return {"pending": dispatcher.pending, "delivered": dispatcher.stats.delivered}


# --- time and reset ----------------------------------------------------------------------------


def _tick(state: EmulatorState) -> dict[str, Any]:
    return {"now": graph_datetime(state.clock.now()), **state.subscriptions.tick()}


@router.get("/clock")
async def clock(request: Request) -> dict[str, Any]:
    state = _state(request)
    return {
        "now": graph_datetime(state.clock.now()),
        "offset_seconds": state.clock.offset.total_seconds(),
    }


@router.post("/clock/advance")
async def advance(body: AdvanceIn, request: Request) -> dict[str, Any]:
    """Move time forward, then tick (expire subscriptions, send reauthorizationRequired)."""
    state = _state(request)
    delta = timedelta(seconds=body.seconds, minutes=body.minutes, hours=body.hours, days=body.days)
    try:
        state.clock.advance(delta)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    return _tick(state)


@router.get("/calendar/settings")
async def calendar_settings(request: Request) -> dict[str, Any]:
    calendars = _state(request).calendars
    return {
        "unlicensed_teams": calendars.unlicensed_teams,
        "delta_token_max_age_seconds": calendars.delta_token_max_age.total_seconds(),
        "empty_pages": calendars.empty_pages,
    }


@router.put("/calendar/settings")
async def set_calendar_settings(body: CalendarSettingsIn, request: Request) -> dict[str, Any]:
    """The calendar's knobs for an emulator run as a process (tests set them in-process)."""
    calendars = _state(request).calendars
    if body.unlicensed_teams is not None:
        calendars.unlicensed_teams = body.unlicensed_teams
    if body.delta_token_max_age_seconds is not None:
        calendars.delta_token_max_age = timedelta(seconds=body.delta_token_max_age_seconds)
    if body.empty_pages is not None:
        calendars.empty_pages = body.empty_pages
    return await calendar_settings(request)


@router.post("/users/{user}/events/{event_id}/move")
async def move_event(user: str, event_id: str, request: Request) -> dict[str, Any]:
    """The person moves the event to Deleted Items and restores it, as in Outlook: its
    default id changes, its immutable id doesn't (learn.microsoft.com/graph/outlook-immutable-id).
    `event_id` in either form; answers both forms of the id it has now."""
    state = _state(request)
    found = state.directory.find_user(user)
    if found is None:
        raise HTTPException(404, f"unknown user {user}")
    calendars = state.calendars
    try:
        stored = inward(event_id, calendars.moves, not_found)
        event = calendars.move(found.id, stored)
    except GraphError as exc:
        raise HTTPException(404, f"unknown event {event_id}") from exc
    return {
        "id": IdForms(calendars.moves, immutable=False).outward(event.id),
        "immutableId": event.id,
        "moves": calendars.moves[event.id],
    }


@router.get("/contract")
async def contract(request: Request) -> dict[str, Any]:
    """The contract check (contract.py): is it on, and the answers that broke the CSDL."""
    check = _state(request).contract
    return {"enabled": check.enabled, "violations": [str(v) for v in check.violations]}


@router.delete("/contract", status_code=204)
async def clear_contract(request: Request) -> Response:
    _state(request).contract.clear()
    return Response(status_code=204)


@router.post("/tick")
async def tick(request: Request) -> dict[str, Any]:
    return _tick(_state(request))


@router.post("/reset", status_code=204)
async def reset(request: Request) -> Response:
    """Back to an empty cloud: directory, apps, tokens, subscriptions, knobs, clock, calendars."""
    reset_state(_state(request))
    return Response(status_code=204)


def reset_state(state: EmulatorState) -> None:
    consumers = state.directory.tenants[CONSUMERS_TENANT_ID]
    state.directory.tenants = {consumers.id: consumers}
    state.directory.users.clear()
    consumers.policy = TenantPolicy()
    state.identity.reset()
    state.subscriptions.reset()
    state.faults.clear()
    state.request_log.clear()
    state.throttle.reset()
    state.clock.reset()
    # Stores attached by other sides (the calendar store...) reset themselves if they can.
    handled = {"identity", "subscriptions", "faults", "request_log", "throttle", "clock"}
    for name, store in vars(state).items():
        if name not in handled and callable(getattr(store, "reset", None)):
            store.reset()
    for store in state.extras.values():
        if callable(getattr(store, "reset", None)):
            store.reset()
