"""JSON APIs take JSON only: a request body of another media type is answered 415 with a
reason (not FastAPI's 422 about the body's shape), before the body is looked at."""

from __future__ import annotations

from fastapi import HTTPException, Request

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def is_json(content_type: str | None) -> bool:
    """application/json, or a +json type, whatever its parameters (charset)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def require_json_body(request: Request) -> None:
    """A router dependency: 415 for a POST/PUT/PATCH whose Content-Type isn't JSON."""
    if request.method in _WITH_BODY and not is_json(request.headers.get("content-type")):
        raise HTTPException(415, "the body must be JSON: send Content-Type: application/json")
