"""What Graph answers for a request no handler takes: Graph's error body, never FastAPI's
`{"detail": ...}` (learn.microsoft.com/graph/errors: `{"error": {"code", "message",
"innerError"}}`).

- A path segment Graph v1.0 doesn't know → 400 `BadRequest` "Resource not found for the
  segment '…'." (what Graph's gateway answers, e.g. microsoftgraph/msgraph-beta-sdk-python#764,
  microsoft-graph-docs-contrib#5038).
- A path Graph knows (the segment is a property, navigation property or bound action in the
  v1.0 metadata, or a top-level entity set) but the emulator doesn't serve → 501 `notSupported`
  (a basic code of the errors page: "The request is not supported by the system"), so a client
  relying on it fails loudly instead of meeting a made-up answer.
- A method the resource doesn't take → 405 `ErrorInvalidRequest` "The OData request is not
  supported." with `Allow` (Outlook's answer, microsoft-graph-docs-contrib#4152).
- Request validation → 400 `BadRequest`.

The control API (`/_emulator`) keeps FastAPI's own answers: it is not Graph.
"""

from __future__ import annotations

from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from emulators.msgraph.errors import graph_error
from emulators.msgraph.metadata import element_type, metadata, short

NOT_EMULATED_DOC = "not emulated (docs/emulator.md, 'Knowingly not emulated')"
# Top-level entity sets and singletons of Graph v1.0 the emulator doesn't serve (the metadata
# extract carries types, not the entity container; these are the common ones).
GRAPH_ROOTS = frozenset(
    {
        "$batch",
        "$metadata",
        "admin",
        "applications",
        "auditLogs",
        "chats",
        "communications",
        "contacts",
        "devices",
        "deviceManagement",
        "directory",
        "directoryObjects",
        "domains",
        "drives",
        "education",
        "groups",
        "identity",
        "identityGovernance",
        "invitations",
        "organization",
        "places",
        "planner",
        "policies",
        "print",
        "reports",
        "search",
        "security",
        "servicePrincipals",
        "shares",
        "sites",
        "solutions",
        "subscribedSkus",
        "teams",
        "teamwork",
    }
)
_ROOT_TYPES = {
    "me": ("user", False),
    "users": ("user", True),
    "subscriptions": ("subscription", True),
}


def _segment_name(segment: str) -> str:
    """`microsoft.graph.delta()` / `delta()` / `delta` → `delta`."""
    name = segment.removeprefix("microsoft.graph.")
    if "(" in name and name.endswith(")"):
        name = name[: name.index("(")]
    return name


def unrouted(path: str) -> tuple[int, str, str]:
    """(status, code, message) for a Graph path no handler serves."""
    parts = [unquote(p) for p in path.strip("/").split("/") if p]
    if not parts:
        return 400, "BadRequest", "Invalid version."
    version, rest = parts[0], parts[1:]
    if version == "beta":
        return 501, "notSupported", f"The beta endpoint is {NOT_EMULATED_DOC}: only v1.0 is."
    if version != "v1.0":
        return 400, "BadRequest", f"Invalid version: {version}"
    if not rest:
        return 501, "notSupported", f"The service document is {NOT_EMULATED_DOC}."
    root = rest[0]
    if root not in _ROOT_TYPES:
        if root in GRAPH_ROOTS:
            return 501, "notSupported", f"'/{root}' is {NOT_EMULATED_DOC}."
        return 400, "BadRequest", f"Resource not found for the segment '{root}'."
    md = metadata()
    type_name, expect_key = _ROOT_TYPES[root]
    for segment in rest[1:]:
        if expect_key:
            expect_key = False
            continue
        name = _segment_name(segment)
        nav = md.all_navigation(type_name).get(name)
        if nav is not None:
            target, expect_key = element_type(nav.type)
            type_name = short(target)
            if type_name not in md.types:  # a type outside the extract: Graph knows it
                break
            continue
        if name in md.all_properties(type_name) or name in md.actions.get(type_name, ()):
            break
        return 400, "BadRequest", f"Resource not found for the segment '{segment}'."
    return 501, "notSupported", f"'{path}' is {NOT_EMULATED_DOC}."


def is_graph_path(path: str) -> bool:
    """Everything but the control API and the identity platform answers as Graph does."""
    first = path.strip("/").split("/", 1)[0]
    return first in ("v1.0", "beta") or (first.startswith("v") and first[1:2].isdigit())


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, APIRoute) and route.path_regex.match(request.url.path):
            methods |= route.methods or set()
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Graph-shaped answers for unrouted paths, wrong methods and validation errors."""

    def _cid(request: Request) -> str | None:
        return request.headers.get("client-request-id")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if path.startswith("/_emulator"):
            return await http_exception_handler(request, exc)
        if exc.status_code == 405:
            allow = ", ".join(_allowed_methods(request)) or (exc.headers or {}).get("Allow", "")
            return graph_error(
                405,
                "ErrorInvalidRequest",
                "The OData request is not supported.",
                headers={"Allow": allow},
                client_request_id=_cid(request),
            )
        if exc.status_code == 404:
            status, code, message = (
                unrouted(path)
                if is_graph_path(path)
                else (404, "NotFound", f"No resource at '{path}'.")
            )
            return graph_error(status, code, message, client_request_id=_cid(request))
        return graph_error(
            exc.status_code, "BadRequest", str(exc.detail), client_request_id=_cid(request)
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith("/_emulator"):
            return await request_validation_exception_handler(request, exc)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = f"Invalid request: {first.get('msg', 'malformed')} ({where})."
        return graph_error(400, "BadRequest", message, client_request_id=_cid(request))
