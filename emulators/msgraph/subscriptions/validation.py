"""The notificationUrl validation handshake Graph performs on create (and on URL change).

Graph POSTs `?validationToken=<token>` and requires, within 10 seconds, `200 OK`,
`Content-Type: text/plain` and the decoded token as the body.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import httpx

from emulators.msgraph.errors import GraphError

FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK "
    "to validation request."
)
TIMED_OUT = "Subscription validation request failed. Must respond with 200 OK to this request."


def _token() -> str:
    # Graph's tokens are long opaque strings with characters that need URL-encoding.
    return (
        "Validation: Testing client application reachability for subscription Request-Id: "
        + secrets.token_hex(16)
    )


async def validate_endpoint(url: str, http: httpx.AsyncClient, seconds: float) -> None:
    """Raises GraphError(400, ValidationError) unless the endpoint echoes the token in time."""
    token = _token()
    separator = "&" if "?" in url else "?"
    target = f"{url}{separator}{urlencode({'validationToken': token})}"
    try:
        response = await http.post(
            target, headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=seconds
        )
    except httpx.TimeoutException as exc:
        raise GraphError(400, "ValidationError", TIMED_OUT) from exc
    except httpx.HTTPError as exc:
        raise GraphError(400, "ValidationError", FAILED) from exc
    content_type = response.headers.get("content-type", "")
    if (
        response.status_code != 200
        or not content_type.lower().startswith("text/plain")
        or response.text != token
    ):
        raise GraphError(400, "ValidationError", FAILED)
