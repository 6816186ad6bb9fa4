"""HTTP routes of connecting: the backend's authorize / disconnect, the browser's callback."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from services.ingress.connect.domain import (
    InvalidReturnUrl,
    return_redirect,
    validate_return_url,
)
from services.ingress.connect.handlers import (
    CommandIdReused,
    ConnectHandlers,
    IdentityUnavailable,
    NotConnected,
    UnknownFlow,
)
from shared.contracts.user_errors import UserErrorCode, user_message

USER_ID = r"^[A-Za-z0-9._:@-]{1,128}$"


class AuthorizeRequest(BaseModel):
    return_url: str = Field(max_length=2000, description="Where the browser goes afterwards.")


class AuthorizeResponse(BaseModel):
    authorization_url: str


class DisconnectRequest(BaseModel):
    command_id: str | None = Field(
        default=None, min_length=8, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$"
    )


class Accepted(BaseModel):
    command_id: str
    status_url: str


def _handlers(request: Request) -> ConnectHandlers:
    handlers: ConnectHandlers = request.app.state.connect
    return handlers


Handlers = Annotated[ConnectHandlers, Depends(_handlers)]


def service_router(auth: Callable[..., object]) -> APIRouter:
    """The SMVue backend's routes (service-authenticated)."""
    router = APIRouter(prefix="/v1/connections", dependencies=[Depends(auth)], tags=["connections"])

    @router.post("/{user_id}/authorize", response_model=AuthorizeResponse)
    async def authorize(
        user_id: str, body: AuthorizeRequest, handlers: Handlers
    ) -> AuthorizeResponse:
        """Starts connecting this SMVue user's Outlook Calendar: answers Microsoft's URL."""
        _check_user_id(user_id)
        try:
            return_url = validate_return_url(
                body.return_url, handlers.settings.oauth_return_url_hosts
            )
        except InvalidReturnUrl as exc:
            raise HTTPException(422, str(exc)) from exc
        try:
            url = await handlers.authorize(user_id, return_url)
        except IdentityUnavailable as exc:
            raise HTTPException(
                503, "the Microsoft identity platform is unreachable; try again shortly"
            ) from exc
        return AuthorizeResponse(authorization_url=url)

    @router.post("/{user_id}/disconnect", status_code=202, response_model=Accepted)
    async def disconnect(
        user_id: str, handlers: Handlers, body: DisconnectRequest | None = None
    ) -> Accepted:
        """Stops syncing, deletes tokens and the subscription; imported meetings stay."""
        _check_user_id(user_id)
        try:
            command_id = await handlers.disconnect(user_id, body.command_id if body else None)
        except NotConnected as exc:
            raise HTTPException(404, "no Outlook Calendar connection for this user") from exc
        except CommandIdReused as exc:
            raise HTTPException(409, "command id already used for a different command") from exc
        return Accepted(command_id=command_id, status_url=f"/v1/commands/{command_id}")

    return router


def _check_user_id(user_id: str) -> None:
    if not re.fullmatch(USER_ID, user_id):
        raise HTTPException(422, "user_id must be 1-128 characters of [A-Za-z0-9._:@-]")


browser_router = APIRouter(tags=["oauth"])


@browser_router.get("/oauth/outlook/callback", response_model=None)
async def callback(request: Request, handlers: Handlers) -> RedirectResponse | HTMLResponse:
    """Microsoft redirects the browser here; it goes on to the SMVue return URL."""
    params = dict(request.query_params)
    if "state" not in params or ("code" not in params and "error" not in params):
        fallback = handlers.settings.oauth_fallback_return_url
        if fallback:
            target = return_redirect(fallback, error=UserErrorCode.AUTHORIZATION_FAILED)
            return RedirectResponse(target, status_code=303)
        return _problem(400, "The sign-in response is missing its state or code.")
    try:
        target = await handlers.callback(params)
    except UnknownFlow:
        fallback = handlers.settings.oauth_fallback_return_url
        if fallback:  # back to SMVue with the help page's words, never stranded here
            target = return_redirect(fallback, error=UserErrorCode.AUTHORIZATION_FAILED)
            return RedirectResponse(target, status_code=303)
        return _problem(400, "This sign-in link is invalid, was already used, or has expired.")
    return RedirectResponse(target, status_code=303)


def _problem(status: int, reason: str) -> HTMLResponse:
    title = user_message(UserErrorCode.AUTHORIZATION_FAILED)
    page = (
        f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{reason}</p>"
        "<p>Start again from Settings &gt; Integrations in SMVue.</p>"
    )
    return HTMLResponse(page, status_code=status)
