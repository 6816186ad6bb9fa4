"""Graph's documented error body: {"error": {"code", "message", "innerError": {...}}}."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi.responses import JSONResponse


def graph_error(
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    client_request_id: str | None = None,
) -> JSONResponse:
    """A Graph error response, with the innerError fields Graph adds to every error."""
    request_id = str(uuid.uuid4())
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }
    all_headers = {
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,  # echoed on errors too
        **(headers or {}),
    }
    return JSONResponse(status_code=status, content=body, headers=all_headers)


class GraphError(Exception):
    """Raised anywhere in a Graph handler; the app turns it into `graph_error(...)`."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class InvalidToken(GraphError):
    """401 InvalidAuthenticationToken, as Graph answers for a missing/expired/bad token."""

    def __init__(self, message: str = "Access token validation failure.") -> None:
        super().__init__(
            401,
            "InvalidAuthenticationToken",
            message,
            headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
        )
