"""Graph v1.0 calendar routes, for `/me/...` and `/users/{id|upn}/...` alike."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from emulators.msgraph.auth import require_principal
from emulators.msgraph.calendar.delta import (
    DEFAULT_PAGE_SIZE,
    DeltaEngine,
    Gone,
    SyncStateGone,
    is_instance,
    removed,
)
from emulators.msgraph.calendar.ids import (
    IMMUTABLE_APPLIED,
    IdForms,
    asks_immutable,
    inward,
    parse_prefer,
)
from emulators.msgraph.calendar.query import refine
from emulators.msgraph.calendar.serialize import render
from emulators.msgraph.calendar.store import CalendarStore, Instance, not_found
from emulators.msgraph.calendar.timezones import iso_utc, parse_query_time, zone
from emulators.msgraph.directory import User
from emulators.msgraph.errors import GraphError
from emulators.msgraph.principal import Principal
from emulators.msgraph.state import EmulatorState

router = APIRouter()
Caller = Annotated[Principal, Depends(require_principal)]
ACCESS_DENIED = "Access is denied. Check credentials and try again."
_EXPAND = re.compile(r"singleValueExtendedProperties\(\$filter=id eq '([^']+)'\)", re.IGNORECASE)


def _both(path: str, methods: list[str], **kwargs: Any) -> Callable[[Any], Any]:
    """Registers a handler under /me{path} and /users/{user_ref}{path}."""

    def register(func: Any) -> Any:
        router.api_route(f"/me{path}", methods=methods, **kwargs)(func)
        router.api_route(f"/users/{{user_ref}}{path}", methods=methods, **kwargs)(func)
        return func

    return register


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _store(request: Request) -> CalendarStore:
    return _state(request).calendars


def _mailbox(request: Request, principal: Principal, *, write: bool = False) -> User:
    state = _state(request)
    ref = request.path_params.get("user_ref")
    user = state.directory.users.get(principal.user_id)
    if ref is not None:
        wanted = state.directory.find_user(ref)
        if wanted is None or user is None or wanted.tenant_id != user.tenant_id:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{ref}' is invalid.")
        if user is None or wanted.id != user.id:
            raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
    if user is None:
        raise GraphError(404, "ResourceNotFound", "User not found")
    allowed = principal.can_write_calendars() if write else principal.can_read_calendars()
    if not allowed:
        raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
    return user


def _preferences(request: Request) -> dict[str, str]:
    return parse_prefer(request.headers.getlist("prefer"))


def _time_zone(request: Request, applied: list[str]) -> str | None:
    """The answer's preferences: the time zone to render in (returned) and, noted in
    `applied`, immutable ids (`_ids`)."""
    tz = _preferences(request).get("outlook.timezone")
    if tz:
        zone(tz)  # 400 for an unknown zone
        applied.append(f'outlook.timezone="{tz}"')
    if _ids(request).immutable:
        applied.append(IMMUTABLE_APPLIED)
    return tz


def _ids(request: Request) -> IdForms:
    """`Prefer: IdType="ImmutableId"` (learn.microsoft.com/graph/outlook-immutable-id):
    this request's answer carries immutable ids; without it, default ids (which change
    when an event moves between folders)."""
    return IdForms(_store(request).moves, asks_immutable(_preferences(request)))


def _event_id(request: Request, wire_id: str) -> str:
    """An id from the path, in either form → the stored id (404 for a stale default id)."""
    return inward(wire_id, _store(request).moves, not_found)


def _query(request: Request, name: str) -> str | None:
    """A query option, its name matched case-insensitively as Graph does ($deltaToken,
    startdatetime... all appear in Microsoft's own samples)."""
    wanted = name.lower()
    for key, value in request.query_params.multi_items():
        if key.lower() == wanted:
            return value
    return None


def _select(request: Request) -> set[str] | None:
    raw = _query(request, "$select")
    return {s.strip() for s in raw.split(",") if s.strip()} if raw else None


def _expand_ids(request: Request) -> set[str] | None:
    raw = _query(request, "$expand")
    if not raw:
        return None
    return {m.lower() for m in _EXPAND.findall(raw)} or None


def _int_param(request: Request, name: str, default: int) -> int:
    raw = _query(request, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for query option '{name}'.")
    return value


def _here(request: Request) -> str:
    """This request's URL without its query: nextLinks/deltaLinks keep /me or /users/{id}."""
    return f"{_state(request).base_url}{request.url.path}"


# Outlook collections page by 10 unless `$top` asks otherwise, "within the range of 1 and
# 1000" (List messages / List events, learn.microsoft.com/graph/api/user-list-events); a
# nextLink carries "all the other query parameters present in the original request"
# (learn.microsoft.com/graph/paging), and a client follows it until it is absent.
MAX_TOP = 1000


def _paged(request: Request, items: list[Instance]) -> tuple[list[Instance], str | None]:
    """One page of a list answer by `$top`/`$skip`, and the nextLink to the rest (or None).
    With the `empty_pages` knob set, the answer is an empty page whose nextLink leads to
    the same items: Graph may answer such a page, and a client must follow it."""
    top = max(1, min(_int_param(request, "$top", DEFAULT_PAGE_SIZE), MAX_TOP))
    skip = _int_param(request, "$skip", 0)
    store = _store(request)
    if store.empty_pages > 0 and skip < len(items):
        store.empty_pages -= 1
        return [], _next_link(request, skip)
    if skip + top < len(items):
        return items[skip : skip + top], _next_link(request, skip + top)
    return items[skip : skip + top], None


def _next_link(request: Request, skip: int) -> str:
    """This request's URL with every query option kept ($select, $top, $expand, the window,
    in either case) and `$skip` moved on."""
    options = [(k, v) for k, v in request.query_params.multi_items() if k.lower() != "$skip"]
    options.append(("$skip", str(skip)))
    query = urlencode(options, quote_via=quote, safe="$'(),:=")
    return f"{_here(request)}?{query}"


def _json(content: Any, status: int = 200, applied: list[str] | None = None) -> JSONResponse:
    headers = {"Preference-Applied": ", ".join(applied)} if applied else None
    if isinstance(content, dict) and isinstance(content.get("value"), list):
        for item in content["value"]:  # @odata.context once per answer, not per item
            if isinstance(item, dict):
                item.pop("@odata.context", None)
    return JSONResponse(content, status_code=status, headers=headers)


def _context(request: Request, user: User, tail: str) -> dict[str, str]:
    """A collection answer's one `@odata.context` (Graph: `$metadata#users('id')/events`)."""
    return {
        "@odata.context": f"{_state(request).base_url}/v1.0/$metadata#users('{user.id}')/{tail}"
    }


def _filter_doc(request: Request, item: Instance) -> dict[str, Any]:
    """An item as `$filter`/`$orderby` see it: UTC, every extended property expanded."""
    ids = {
        str(p.get("id", "")).lower()
        for p in item.event.data.get("singleValueExtendedProperties") or []
    }
    return _render(request, item, None, expand_property_ids=ids or None)


def _render(request: Request, item: Instance, tz: str | None, **kw: Any) -> dict[str, Any]:
    state = _state(request)
    return render(
        item,
        state.directory,
        base_url=state.base_url,
        time_zone=tz,
        id_of=_ids(request).outward,
        **kw,
    )


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from exc
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
    return body


def _user_json(user: User, base_url: str) -> dict[str, Any]:
    return {
        "@odata.context": f"{base_url}/v1.0/$metadata#users/$entity",
        "id": user.id,
        "displayName": user.display_name,
        "mail": user.mail,
        "userPrincipalName": user.user_principal_name,
        "givenName": user.display_name.split(" ")[0],
        "surname": " ".join(user.display_name.split(" ")[1:]) or None,
        "jobTitle": None,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "businessPhones": [],
    }


# "Get user" (learn.microsoft.com/graph/api/user-get): User.Read is the least privileged
# delegated permission for one's own profile; reading someone else's needs a directory
# permission (User.ReadBasic.All and up). Calendars.* and the OpenID scopes (openid, profile,
# email: never in the access token's scp) grant neither.
_OWN_PROFILE = frozenset(
    {
        "user.read",
        "user.readwrite",
        "user.readbasic.all",
        "user.read.all",
        "user.readwrite.all",
        "directory.read.all",
        "directory.readwrite.all",
        "directory.accessasuser.all",
    }
)
_OTHERS_PROFILES = _OWN_PROFILE - {"user.read", "user.readwrite"}
INSUFFICIENT = "Insufficient privileges to complete the operation."


@router.get("/me")
@router.get("/users/{user_ref}")
async def get_user(request: Request, principal: Caller) -> JSONResponse:
    state = _state(request)
    ref = request.path_params.get("user_ref")
    caller = state.directory.users.get(principal.user_id)
    user = state.directory.find_user(ref) if ref else caller
    if user is None or caller is None or user.tenant_id != caller.tenant_id:
        # Another tenant's users don't exist from here.
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{ref or principal.user_id}' does not exist or one of its queried "
            "reference-property objects are not present.",
        )
    granted = {s.lower() for s in principal.scopes}
    needed = _OWN_PROFILE if user.id == caller.id else _OTHERS_PROFILES
    if not granted & needed:
        raise GraphError(403, "Authorization_RequestDenied", INSUFFICIENT)
    body = _user_json(user, state.base_url)
    select = _select(request)
    if select:
        body = {k: v for k, v in body.items() if k in select or k.startswith("@odata")}
    return _json(body)


def _calendar_json(user: User) -> dict[str, Any]:
    return {
        "id": f"AAMkCal-{user.id}",
        "name": "Calendar",
        "color": "auto",
        "hexColor": "",
        "isDefaultCalendar": True,
        "changeKey": "calendar-1",
        "canShare": True,
        "canViewPrivateItems": True,
        "canEdit": True,
        "isRemovable": False,
        "isTallyingResponses": True,
        "allowedOnlineMeetingProviders": ["teamsForBusiness"] if user.teams_licence else [],
        # onlineMeetingProviderType members only (CSDL): "unknown" when Teams isn't allowed.
        "defaultOnlineMeetingProvider": "teamsForBusiness" if user.teams_licence else "unknown",
        "owner": {"name": user.display_name, "address": user.mail},
    }


def _selected(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """`$select` on an entity: the named properties (and the always-present `id`)."""
    select = _select(request)
    if not select:
        return body
    return {k: v for k, v in body.items() if k in select or k == "id" or k.startswith("@odata")}


@_both("/calendar", ["GET"])
async def get_calendar(request: Request, principal: Caller) -> JSONResponse:
    return _json(_selected(request, _calendar_json(_mailbox(request, principal))))


@_both("/calendars", ["GET"])
async def list_calendars(request: Request, principal: Caller) -> JSONResponse:
    user = _mailbox(request, principal)
    return _json(
        {
            "@odata.context": (
                f"{_state(request).base_url}/v1.0/$metadata#users('{user.id}')/calendars"
            ),
            "value": [_selected(request, _calendar_json(user))],
        }
    )


@_both("/events", ["GET"])
async def list_events(request: Request, principal: Caller) -> JSONResponse:
    user = _mailbox(request, principal)
    store = _store(request)
    applied: list[str] = []
    tz = _time_zone(request, applied)
    items = sorted(
        (store.instance(user.id, e.id) for e in store.events_of(user.id)),
        key=lambda i: (i.start, i.id),
    )
    items = refine(request, items, lambda i: _filter_doc(request, i))
    page, next_link = _paged(request, items)
    select, expand = _select(request), _expand_ids(request)
    body: dict[str, Any] = {
        **_context(request, user, "events"),
        "value": [_render(request, i, tz, select=select, expand_property_ids=expand) for i in page],
    }
    if next_link:
        body["@odata.nextLink"] = next_link
    return _json(body, applied=applied)


@_both("/events", ["POST"])
async def create_event(request: Request, principal: Caller) -> JSONResponse:
    user = _mailbox(request, principal, write=True)
    applied: list[str] = []
    tz = _time_zone(request, applied)
    event, _ = _store(request).create(user, await _body(request))
    item = _store(request).instance(user.id, event.id)
    return _json(
        _render(request, item, tz, expand_property_ids=_expand_ids(request)),
        status=201,
        applied=applied,
    )


@_both("/events/{event_id}", ["GET"])
async def get_event(event_id: str, request: Request, principal: Caller) -> JSONResponse:
    event_id = _event_id(request, event_id)
    user = _mailbox(request, principal)
    applied: list[str] = []
    tz = _time_zone(request, applied)
    item = _store(request).instance(user.id, event_id)
    return _json(
        _render(
            request, item, tz, select=_select(request), expand_property_ids=_expand_ids(request)
        ),
        applied=applied,
    )


@_both("/events/{event_id}", ["PATCH"])
async def update_event(event_id: str, request: Request, principal: Caller) -> JSONResponse:
    event_id = _event_id(request, event_id)
    user = _mailbox(request, principal, write=True)
    applied: list[str] = []
    tz = _time_zone(request, applied)
    item = _store(request).update(
        user, event_id, await _body(request), request.headers.get("if-match")
    )
    return _json(_render(request, item, tz), applied=applied)


@_both("/events/{event_id}", ["DELETE"])
async def delete_event(event_id: str, request: Request, principal: Caller) -> Response:
    event_id = _event_id(request, event_id)
    user = _mailbox(request, principal, write=True)
    _store(request).delete(user, event_id, request.headers.get("if-match"))
    return Response(status_code=204)


@_both("/events/{event_id}/cancel", ["POST"])
async def cancel_event(event_id: str, request: Request, principal: Caller) -> Response:
    event_id = _event_id(request, event_id)
    user = _mailbox(request, principal, write=True)
    body = await _body(request)
    comment = body.get("Comment", body.get("comment"))
    _store(request).cancel(user, event_id, str(comment) if comment else None)
    return Response(status_code=202)


def _window(request: Request) -> tuple[Any, Any]:
    start = _query(request, "startDateTime")
    end = _query(request, "endDateTime")
    if not start or not end:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    window = parse_query_time(start, "startDateTime"), parse_query_time(end, "endDateTime")
    if window[1] <= window[0]:
        raise GraphError(400, "ErrorInvalidParameter", "EndDateTime must be after StartDateTime.")
    return window


@_both("/events/{event_id}/instances", ["GET"])
async def list_instances(event_id: str, request: Request, principal: Caller) -> JSONResponse:
    event_id = _event_id(request, event_id)
    user = _mailbox(request, principal)
    start, end = _window(request)
    applied: list[str] = []
    tz = _time_zone(request, applied)
    items = [
        i
        for i in _store(request).instances(user.id, start, end)
        if i.event.id == event_id and i.kind != "singleInstance"
    ]
    if not items:
        _store(request).get(user.id, event_id)  # 404 when the series doesn't exist
    return _list_answer(request, user, f"events('{event_id}')/instances", items, tz, applied)


@_both("/calendarView", ["GET"])
@_both("/calendar/calendarView", ["GET"])
async def calendar_view(request: Request, principal: Caller) -> JSONResponse:
    user = _mailbox(request, principal)
    start, end = _window(request)
    applied: list[str] = []
    tz = _time_zone(request, applied)
    items = refine(
        request, _store(request).instances(user.id, start, end), lambda i: _filter_doc(request, i)
    )
    return _list_answer(request, user, "calendarView", items, tz, applied)


def _list_answer(
    request: Request,
    user: User,
    context: str,
    items: list[Instance],
    tz: str | None,
    applied: list[str],
) -> JSONResponse:
    page, next_link = _paged(request, items)
    select = _select(request)
    body: dict[str, Any] = {
        **_context(request, user, context),
        "value": [_render(request, i, tz, select=select) for i in page],
    }
    if next_link:
        body["@odata.nextLink"] = next_link
    return _json(body, applied=applied)


_NOT_ON_DELTA = ("$select", "$expand", "$filter", "$orderby", "$search")


# The SDKs spell the function call `delta()` or `microsoft.graph.delta()` (OData's bound
# function syntax); Graph answers all three alike.
@_both("/calendarView/delta", ["GET"])
@_both("/calendarView/delta()", ["GET"])
@_both("/calendarView/microsoft.graph.delta()", ["GET"])
@_both("/calendar/calendarView/delta", ["GET"])
@_both("/calendar/calendarView/delta()", ["GET"])
@_both("/calendar/calendarView/microsoft.graph.delta()", ["GET"])
async def calendar_view_delta(request: Request, principal: Caller) -> JSONResponse:
    """event: delta on a calendarView (docs: /graph/api/event-delta, /graph/delta-query-events)."""
    user = _mailbox(request, principal)
    engine: DeltaEngine = _state(request).calendar_delta
    for option in _NOT_ON_DELTA:
        if _query(request, option) is not None:
            raise GraphError(
                400,
                "ErrorInvalidUrlQuery",
                f"The query option '{option}' is not supported on delta for calendarView.",
            )
    applied = ["odata.track-changes"]
    tz = _time_zone(request, applied)
    prefs = _preferences(request)
    page_size = DEFAULT_PAGE_SIZE
    if "odata.maxpagesize" in prefs:
        try:
            page_size = int(prefs["odata.maxpagesize"])
        except ValueError as exc:
            raise GraphError(400, "BadRequest", "Invalid odata.maxpagesize preference.") from exc
        if page_size < 1:
            raise GraphError(400, "BadRequest", "Invalid odata.maxpagesize preference.")
        applied.append(f"odata.maxpagesize={page_size}")
    base = _here(request)
    try:
        skip_token = _query(request, "$skiptoken")
        if skip_token is not None:
            round_, index = engine.continue_round(user.id, skip_token)
        else:
            delta_token = _query(request, "$deltatoken")
            window = None if delta_token else _window(request)
            round_, index = engine.start_round(
                user.id, window=window, delta_token=delta_token or None, page_size=page_size
            )
    except SyncStateGone as gone:
        # delta-query-overview "Synchronization reset": 410 with a Location to start over.
        if gone.window is not None:
            start, end = gone.window
            gone.headers["Location"] = (
                f"{base}?startDateTime={iso_utc(start)}&endDateTime={iso_utc(end)}"
            )
        raise
    value: list[dict[str, Any]] = []
    ids = _ids(request)
    for entry in round_.pages[index]:
        if is_instance(entry):
            item = {"@odata.type": "#microsoft.graph.event", **_render(request, entry, tz)}
            item.pop("@odata.context", None)
            value.append(item)
        elif isinstance(entry, Gone) and not (entry.moved_only and ids.immutable):
            value.append(removed(ids.outward_as_of(entry.id, entry.moves)))
    body: dict[str, Any] = {
        "@odata.context": f"{_state(request).base_url}/v1.0/$metadata#Collection(event)",
    }
    if index + 1 < len(round_.pages):
        body["@odata.nextLink"] = f"{base}?$skiptoken={round_.page_tokens[index]}"
    else:
        body["@odata.deltaLink"] = f"{base}?$deltatoken={round_.delta_token}"
    body["value"] = value
    return _json(body, applied=applied)
