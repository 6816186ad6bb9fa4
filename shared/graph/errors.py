"""What can go wrong talking to Graph, as exceptions a handler can decide on.

Each carries Graph's error code and request id (for the audit log and support), never the
request's token or body.
"""

from __future__ import annotations


class GraphError(Exception):
    """Any non-2xx answer from Graph after retries."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"Graph {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        return self.status in (408, 429, 500, 502, 503, 504)


class GraphUnauthorized(GraphError):
    """401: the access token was refused even after a refresh."""


class GraphForbidden(GraphError):
    """403: the grant lacks a scope (e.g. Calendars.ReadWrite) or access is blocked."""


class GraphNotFound(GraphError):
    """404: the item is gone (deleted in Outlook)."""


class GraphPreconditionFailed(GraphError):
    """412: If-Match did not match: someone changed the event meanwhile."""


class GraphGone(GraphError):
    """410: e.g. an expired delta token: start a new round from scratch."""


class GraphThrottled(GraphError):
    """429/503/504 and retries ran out: try again after `retry_after`."""


class GraphUnavailable(GraphError):
    """5xx or a network failure that outlasted the retries."""


class ReauthorizationRequired(Exception):
    """The refresh token is expired or revoked: the person must reconnect."""


class NotConnected(Exception):
    """No credentials are stored for the connection (never connected, or disconnected)."""


_BY_STATUS: dict[int, type[GraphError]] = {
    401: GraphUnauthorized,
    403: GraphForbidden,
    404: GraphNotFound,
    410: GraphGone,
    412: GraphPreconditionFailed,
    429: GraphThrottled,
    503: GraphThrottled,
    504: GraphThrottled,
}


def error_for(
    status: int, code: str, message: str, request_id: str | None, retry_after: float | None
) -> GraphError:
    cls = _BY_STATUS.get(status) or (GraphUnavailable if status >= 500 else GraphError)
    return cls(status, code, message, request_id, retry_after)
