"""The operational HTTP surface every service exposes: /healthz, /readyz and /metrics.

Services with an API (ingress, projector) mount their routes on the same app.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from shared.observability import metrics

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

    app.add_middleware(_RequestMetrics, service=service)
    return app


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
