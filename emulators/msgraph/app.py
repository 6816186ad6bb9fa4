"""The emulator's ASGI app: Graph v1.0 under /v1.0, identity under /{tenant}, control under
/_emulator. Each side contributes its router; this module only assembles them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from emulators.msgraph.calendar.query import check_options
from emulators.msgraph.calendar.routes import router as calendar_router
from emulators.msgraph.control.middleware import TrafficMiddleware
from emulators.msgraph.control.routes import router as control_router
from emulators.msgraph.errors import GraphError, graph_error
from emulators.msgraph.identity.routes import router as identity_router
from emulators.msgraph.routing import install as install_graph_fallbacks
from emulators.msgraph.state import EmulatorState
from emulators.msgraph.subscriptions.routes import router as subscriptions_router


def create_app(state: EmulatorState | None = None) -> FastAPI:
    state = state or EmulatorState()
    emulator = state

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await emulator.subscriptions.dispatcher.aclose()  # stop webhook delivery cleanly

    app = FastAPI(
        title="Microsoft Graph + identity platform emulator", docs_url=None, lifespan=lifespan
    )
    app.state.emulator = state
    if state.token_verifier is None:  # identity/ verifies bearer tokens unless a test swaps it
        state.token_verifier = state.identity

    @app.exception_handler(GraphError)
    async def _graph_error(request: Request, exc: GraphError) -> JSONResponse:
        return graph_error(
            exc.status,
            exc.code,
            exc.message,
            headers=exc.headers,
            client_request_id=request.headers.get("client-request-id"),
        )

    install_graph_fallbacks(app)  # Graph's body for unrouted paths, wrong methods, bad input
    # Routers are included here by each side (calendar, subscriptions, identity, control).
    # Each calendar route refuses the query options it doesn't emulate (calendar/query.py).
    app.include_router(calendar_router, prefix="/v1.0", dependencies=[Depends(check_options)])
    app.include_router(identity_router)
    app.include_router(subscriptions_router)
    app.include_router(control_router)
    app.add_middleware(TrafficMiddleware, state=state)
    return app
