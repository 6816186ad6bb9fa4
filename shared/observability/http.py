"""The operational HTTP surface every service exposes: /healthz, /readyz and /metrics.

Services with an API (ingress, projector) mount their routes on the same app, so they also
share the one mapping of infrastructure failures to answers: a route that fails because
MongoDB or Kafka is briefly unavailable (`shared.messaging.failures.is_transient`, the same
classifier the consumers retry by) answers **503 with a reason and Retry-After**, never 500.
The caller retries; a 500 stays what it means, a bug.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.messaging.failures import is_transient, retry_after
from shared.observability import metrics
from shared.observability.logging import get_logger

log = get_logger(__name__)

TRANSIENT_RETRY_AFTER_SECONDS = 5
"""Retry-After of a 503 for an infrastructure outage (unless the failure asks for longer)."""

ReadinessCheck = Callable[[], Awaitable[bool]]


def create_ops_app(
    service: str, checks: Mapping[str, ReadinessCheck] | None = None, **fastapi_kwargs: object
) -> FastAPI:
    options: dict[str, object] = {"title": f"smvue-{service}", **fastapi_kwargs}
    app = FastAPI(**options)  # type: ignore[arg-type]
    readiness = dict(checks or {})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        results = {name: await check() for name, check in readiness.items()}
        ready = all(results.values())
        return JSONResponse(
            status_code=200 if ready else 503,
            content={"status": "ready" if ready else "not ready", "checks": results},
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(TransientFailuresAre503)  # inside the metrics: 503s are counted
    app.add_middleware(_RequestMetrics, service=service)
    return app


def transient_failure_response(exc: BaseException) -> JSONResponse:
    """The answer to a request that failed on a transient infrastructure error."""
    asked = retry_after(exc)
    seconds = max(TRANSIENT_RETRY_AFTER_SECONDS, math.ceil(asked) if asked else 0)
    return JSONResponse(
        {
            "detail": {
                "code": "temporarily_unavailable",
                "message": "a backing service (database or message broker) is briefly "
                f"unavailable; nothing was changed for certain — retry in {seconds} s with the "
                "same command id",
            }
        },
        status_code=503,
        headers={"Retry-After": str(seconds)},
    )


class TransientFailuresAre503:
    """ASGI middleware: a transient infrastructure error escaping a route becomes 503 +
    Retry-After (if the answer hasn't started yet); anything else propagates (a 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            if started or not is_transient(exc):
                raise
            log.warning(
                "request failed on a transient infrastructure error",
                path=scope.get("path"),
                error=type(exc).__name__,
            )
            await transient_failure_response(exc)(scope, receive, send)


class _RequestMetrics(BaseHTTPMiddleware):
    def __init__(self, app: object, service: str) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self._service = service

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.HTTP_SECONDS.labels(service=self._service, route=path).observe(
            time.perf_counter() - started
        )
        metrics.HTTP_REQUESTS.labels(
            service=self._service, route=path, status=str(response.status_code)
        ).inc()
        return response
