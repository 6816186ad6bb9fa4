"""Identity platform v2.0 endpoints under `/{tenant}`: discovery, keys, authorize, token.

`{tenant}` is a tenant id, a verified domain, `common`, `organizations` or `consumers`.
Errors that can't be trusted to a redirect (unknown tenant/app, unregistered redirect URI)
render an error page; everything else goes back to the redirect URI as `error` +
`error_description`, like login.microsoftonline.com.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from emulators.msgraph.directory import CONSUMERS_TENANT_ID, Tenant, User
from emulators.msgraph.identity.discovery import instance_discovery, openid_configuration
from emulators.msgraph.identity.errors import IdentityError
from emulators.msgraph.identity.pages import FORWARDED_FIELDS, consent_page, error_page
from emulators.msgraph.identity.scopes import split_scopes
from emulators.msgraph.state import EmulatorState

router = APIRouter(include_in_schema=False)


def _state(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def _tenant(state: EmulatorState, segment: str) -> Tenant | None:
    if segment.lower() == "consumers":
        return state.directory.tenants.get(CONSUMERS_TENANT_ID)
    return state.directory.resolve_tenant(segment)


def _known_segment(state: EmulatorState, segment: str) -> bool:
    return segment.lower() in ("common", "organizations") or _tenant(state, segment) is not None


def _accounts(state: EmulatorState, segment: str) -> list[User]:
    """Who may sign in through this authority."""
    users = list(state.directory.users.values())
    lowered = segment.lower()
    if lowered == "common":
        return users
    if lowered == "organizations":
        return [u for u in users if not state.directory.tenant_of(u).personal]
    tenant = _tenant(state, segment)
    return [u for u in users if tenant is not None and u.tenant_id == tenant.id]


def _tenant_not_found(segment: str) -> IdentityError:
    return IdentityError(
        "invalid_tenant",
        90002,
        f"Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud.",
    )


def _oauth_error(state: EmulatorState, exc: IdentityError, request: Request) -> JSONResponse:
    body = exc.body(state.clock.now(), request.headers.get("client-request-id"))
    return JSONResponse(status_code=exc.status, content=body)


def _error_page(state: EmulatorState, exc: IdentityError) -> HTMLResponse:
    description = exc.body(state.clock.now())["error_description"]
    return HTMLResponse(error_page(description), status_code=400)


def _back_to_app(params: dict[str, str], result: dict[str, str]) -> Response:
    """Redirect to the app with `code`/`error` (+ state), honouring `response_mode`."""
    if params.get("state"):
        result = {**result, "state": params["state"]}
    mode = params.get("response_mode") or "query"
    redirect_uri = params["redirect_uri"]
    if mode == "form_post":
        fields = "".join(
            f"<input type='hidden' name='{k}' value='{v}'>"
            for k, v in ((k, _html_attr(v)) for k, v in result.items())
        )
        html = (
            f"<html><body onload='document.forms[0].submit()'><form method='post' "
            f"action='{_html_attr(redirect_uri)}'>{fields}</form></body></html>"
        )
        return HTMLResponse(html)
    separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(result)}", status_code=302)


def _html_attr(value: str) -> str:
    return escape(value, quote=True)


def _redirect_error(state: EmulatorState, params: dict[str, str], exc: IdentityError) -> Response:
    body = exc.body(state.clock.now())
    return _back_to_app(
        params, {"error": exc.error, "error_description": str(body["error_description"])}
    )


# --- discovery ---------------------------------------------------------------------------------


@router.get("/{tenant}/v2.0/.well-known/openid-configuration")
@router.get("/{tenant}/.well-known/openid-configuration")
async def openid_config(tenant: str, request: Request) -> JSONResponse:
    state = _state(request)
    if not _known_segment(state, tenant):
        exc = _tenant_not_found(tenant)
        return _oauth_error(state, exc, request)
    resolved = None if tenant.lower() in ("common", "organizations") else _tenant(state, tenant)
    return JSONResponse(openid_configuration(state.base_url, tenant, resolved))


@router.get("/{tenant}/discovery/v2.0/keys")
@router.get("/{tenant}/discovery/keys")
async def jwks(tenant: str, request: Request) -> JSONResponse:
    return JSONResponse(_state(request).identity.jwks())


@router.get("/common/discovery/instance")
async def discovery_instance(request: Request, authorization_endpoint: str = "") -> JSONResponse:
    return JSONResponse(instance_discovery(_state(request).base_url, authorization_endpoint))


# --- authorize ---------------------------------------------------------------------------------


def _check_request(state: EmulatorState, tenant: str, params: dict[str, str]) -> str:
    """Validates tenant, app and redirect URI; returns the app's display name."""
    if not _known_segment(state, tenant):
        raise _tenant_not_found(tenant)
    for name in ("client_id", "redirect_uri"):
        if not params.get(name):
            raise IdentityError(
                "invalid_request",
                900144,
                f"The request body must contain the following parameter: '{name}'.",
            )
    app = state.identity.app_for_authorize(params["client_id"], params["redirect_uri"], tenant)
    return app.display_name


def _check_redirectable(params: dict[str, str]) -> IdentityError | None:
    """Errors reported back to the (now trusted) redirect URI."""
    if params.get("response_type", "code") != "code":
        return IdentityError(
            "unsupported_response_type",
            700054,
            "response_type 'id_token' is not enabled for the application.",
        )
    method = params.get("code_challenge_method")
    if params.get("code_challenge") and method and method not in ("S256", "plain"):
        return IdentityError(
            "invalid_request",
            50122,
            "The code_challenge_method is invalid; supported values are 'S256' and 'plain'.",
        )
    if not split_scopes(params.get("scope")):
        return IdentityError(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        )
    return None


@router.get("/{tenant}/oauth2/v2.0/authorize")
async def authorize_page(tenant: str, request: Request) -> Response:
    state = _state(request)
    params = dict(request.query_params)
    try:
        app_name = _check_request(state, tenant, params)
    except IdentityError as exc:
        return _error_page(state, exc)
    problem = _check_redirectable(params)
    if problem is not None:
        return _redirect_error(state, params, problem)
    accounts = _accounts(state, tenant)
    if params.get("prompt") == "none":
        # No browser session exists in the emulator: a silent request can't sign anyone in.
        policy_blocks = any(
            state.directory.tenant_of(u).policy.admin_consent_required for u in accounts
        )
        silent_error = (
            IdentityError(
                "consent_required",
                65001,
                f"The user or administrator has not consented to use the application with ID "
                f"'{params['client_id']}' named '{app_name}'. Send an interactive authorization "
                "request for this user and resource.",
            )
            if policy_blocks
            else IdentityError(
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.",
            )
        )
        return _redirect_error(state, params, silent_error)
    html = consent_page(
        action_url=str(request.url.remove_query_params(list(request.query_params.keys()))),
        app_name=app_name,
        accounts=accounts,
        scopes=split_scopes(params.get("scope")),
        params=params,
    )
    return HTMLResponse(html)


@router.post("/{tenant}/oauth2/v2.0/authorize")
async def authorize_submit(tenant: str, request: Request) -> Response:
    """The consent form: `account`, `action` (accept|cancel) + the forwarded parameters."""
    state = _state(request)
    form = await request.form()
    params = {k: str(v) for k, v in form.items() if k in (*FORWARDED_FIELDS, "account", "action")}
    try:
        _check_request(state, tenant, params)
    except IdentityError as exc:
        return _error_page(state, exc)
    problem = _check_redirectable(params)
    if problem is not None:
        return _redirect_error(state, params, problem)
    if params.get("action") != "accept":
        return _redirect_error(
            state,
            params,
            IdentityError("access_denied", 65004, "User declined to consent to access the app."),
        )
    user = state.directory.find_user(params.get("account", ""))
    if user is None or user.id not in {u.id for u in _accounts(state, tenant)}:
        return _error_page(
            state,
            IdentityError(
                "invalid_request",
                50020,
                f"User account '{params.get('account', '')}' does not exist in tenant "
                f"'{tenant}' and cannot access the application '{params['client_id']}' in that "
                "tenant.",
            ),
        )
    user_tenant = state.directory.tenant_of(user)
    policy = user_tenant.policy
    if policy.conditional_access_block:
        return _redirect_error(
            state,
            params,
            IdentityError(
                "access_denied",
                53003,
                "Access has been blocked by Conditional Access policies. The access policy does "
                "not allow token issuance.",
            ),
        )
    app = state.identity.apps[params["client_id"]]
    if policy.admin_consent_required:
        return _redirect_error(
            state,
            params,
            IdentityError(
                "access_denied",
                90094,
                f"{app.display_name} needs permission to access resources in your organization "
                "that only an admin can grant. Please ask an admin to grant permission to this "
                "app before you can use it.",
            ),
        )
    granted = state.identity.grantable(user_tenant, app, split_scopes(params.get("scope")))
    code = state.identity.issue_code(
        client_id=app.client_id,
        user_id=user.id,
        redirect_uri=params["redirect_uri"],
        scopes=granted,
        code_challenge=params.get("code_challenge") or None,
        code_challenge_method=params.get("code_challenge_method") or None,
        nonce=params.get("nonce") or None,
    )
    return _back_to_app(params, {"code": code})


# --- token -------------------------------------------------------------------------------------


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
    """client_secret_post, or client_secret_basic (Authorization: Basic id:secret)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        decoded = base64.b64decode(header[6:]).decode("utf-8")
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret")


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise IdentityError(
            "invalid_request",
            900144,
            f"The request body must contain the following parameter: '{name}'.",
        )
    return value


@router.post("/{tenant}/oauth2/v2.0/token")
async def token(tenant: str, request: Request) -> JSONResponse:
    state = _state(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        if not _known_segment(state, tenant):
            raise _tenant_not_found(tenant)
        grant_type = _required(form, "grant_type")
        client_id, secret = _client_credentials(request, form)
        if not client_id:
            _required(form, "client_id")
        state.identity.authenticate_client(client_id, secret)
        body: dict[str, Any]
        if grant_type == "authorization_code":
            body = state.identity.redeem_code(
                code=_required(form, "code"),
                client_id=client_id,
                redirect_uri=form.get("redirect_uri"),
                code_verifier=form.get("code_verifier"),
            )
        elif grant_type == "refresh_token":
            body = state.identity.redeem_refresh_token(
                refresh_token=_required(form, "refresh_token"),
                client_id=client_id,
                scope=form.get("scope"),
            )
        else:
            raise IdentityError(
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
    except IdentityError as exc:
        return _oauth_error(state, exc, request)
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    return JSONResponse(body, headers=headers)
