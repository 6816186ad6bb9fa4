"""OData query options on the calendar routes: each route takes the options it emulates, and
answers Graph's error body for the others instead of ignoring them (a client filtering for
"its own" events must not get all of them).

- `$filter` (on `…/events` and `…/calendarView`): comparisons `eq ne gt ge lt le` on the
  properties in `FILTERABLE`, joined by `and`, and the extended-property filter Microsoft
  documents for finding an app's own items (singlevaluelegacyextendedproperty-get:
  `singleValueExtendedProperties/Any(ep: ep/id eq '{id}' and ep/value eq '{value}')`).
  Anything else (`or`, `not`, functions such as `contains`, lambda over other collections,
  other properties) → 400 `BadRequest` "Invalid filter clause: … not emulated".
- `$orderby` (same routes): `FILTERABLE`'s scalar paths, `asc`/`desc`, comma-separated →
  else 400 `BadRequest`.
- `$expand`: only `singleValueExtendedProperties($filter=id eq '…')` (what the writer asks).
- Any other system query option a route doesn't take → 501 `notSupported` (Graph has it,
  the emulator doesn't emulate it there); a `$name` OData doesn't define → 400.

calendarView/delta checks its own options (Graph refuses `$filter`, `$orderby`, `$select`...
there: 400 `ErrorInvalidUrlQuery`, see routes.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import Request
from fastapi.routing import APIRoute

from emulators.msgraph.errors import GraphError

T = TypeVar("T")
ODATA_OPTIONS = frozenset(
    {
        "$filter",
        "$orderby",
        "$select",
        "$expand",
        "$top",
        "$skip",
        "$count",
        "$search",
        "$format",
        "$skiptoken",
        "$deltatoken",
        "$levels",
        "$apply",
        "$compute",
        "$index",
        "$schemaversion",
        "$id",
    }
)
_LIST = frozenset({"$filter", "$orderby", "$select", "$expand", "$top", "$skip", "$skiptoken"})
# Route template (after /me or /users/{user_ref}) + method → the options it emulates.
ROUTE_OPTIONS: dict[tuple[str, str], frozenset[str]] = {
    ("", "GET"): frozenset({"$select"}),
    ("/calendar", "GET"): frozenset({"$select"}),
    ("/calendars", "GET"): frozenset({"$select"}),
    ("/events", "GET"): _LIST,
    ("/events", "POST"): frozenset({"$expand"}),
    ("/events/{event_id}", "GET"): frozenset({"$select", "$expand"}),
    ("/events/{event_id}", "PATCH"): frozenset(),
    ("/events/{event_id}", "DELETE"): frozenset(),
    ("/events/{event_id}/cancel", "POST"): frozenset(),
    ("/events/{event_id}/instances", "GET"): frozenset({"$select", "$top", "$skip", "$skiptoken"}),
    ("/calendarView", "GET"): _LIST,
    ("/calendar/calendarView", "GET"): _LIST,
}
_EXPAND_ONE = re.compile(r"singleValueExtendedProperties\(\$filter=id eq '[^']+'\)", re.IGNORECASE)
NOT_EMULATED = "not emulated (docs/emulator.md lists what is)"


def _route_key(request: Request) -> tuple[str, str] | None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return None
    path = route.path.removeprefix("/v1.0")
    for owner in ("/me", "/users/{user_ref}"):
        if path.startswith(owner):
            return path[len(owner) :], request.method
    return None


async def check_options(request: Request) -> None:
    """Router dependency: refuse the query options this route doesn't emulate."""
    key = _route_key(request)
    if key is None or key not in ROUTE_OPTIONS:
        return  # delta and the other routes check their own
    allowed = ROUTE_OPTIONS[key]
    for name, value in request.query_params.multi_items():
        option = name.lower()
        if not option.startswith("$"):
            continue
        if option not in ODATA_OPTIONS:
            raise GraphError(400, "BadRequest", f"Query option '{name}' is not supported.")
        canonical = option
        if canonical not in allowed:
            if canonical in ("$filter", "$orderby"):
                raise GraphError(
                    400, "BadRequest", f"Query option '{name}' on this resource is {NOT_EMULATED}."
                )
            raise GraphError(
                501, "notSupported", f"Query option '{name}' on this resource is {NOT_EMULATED}."
            )
        if canonical == "$expand" and not all(
            _EXPAND_ONE.fullmatch(part.strip()) for part in _split_top(value)
        ):
            raise GraphError(501, "notSupported", f"$expand={value} is {NOT_EMULATED}.")
        if canonical == "$filter":
            parse_filter(value)
        if canonical == "$orderby":
            parse_orderby(value)


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    parts, depth, quoted, current = [], 0, False, ""
    for char in text:
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if char == "," and depth == 0 and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


# --- $filter ---------------------------------------------------------------------------------

FILTERABLE = frozenset(
    {
        "id",
        "subject",
        "iCalUId",
        "type",
        "showAs",
        "sensitivity",
        "importance",
        "isAllDay",
        "isCancelled",
        "isOrganizer",
        "isOnlineMeeting",
        "seriesMasterId",
        "transactionId",
        "createdDateTime",
        "lastModifiedDateTime",
        "start/dateTime",
        "end/dateTime",
        "organizer/emailAddress/address",
    }
)
_DATES = frozenset({"createdDateTime", "lastModifiedDateTime", "start/dateTime", "end/dateTime"})
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<lp>\()|(?P<rp>\))|(?P<colon>:)"
    r"|(?P<word>[A-Za-z_][\w./]*)|(?P<num>[-+]?\d[\w:.+-]*))"
)
_OPS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_EXT = "singlevalueextendedproperties/any"

Doc = dict[str, Any]
Predicate = Callable[[Doc], bool]


def _invalid(text: str, why: str) -> GraphError:
    return GraphError(
        400, "BadRequest", f"Invalid filter clause: {why} in '{text}' is {NOT_EMULATED}."
    )


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise _invalid(text, f"the syntax at '{text[pos:]}'")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _literal(kind: str, raw: str, text: str) -> Any:
    if kind == "str":
        return raw[1:-1].replace("''", "'")
    if kind == "word" and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if kind == "word" and raw.lower() == "null":
        return None
    if kind == "num":
        if re.fullmatch(r"[-+]?\d+", raw):
            return int(raw)
        return raw  # a datetime literal (unquoted)
    raise _invalid(text, f"the value '{raw}'")


def _as_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip().removesuffix("Z")
    if "." in text:
        head, _, frac = text.partition(".")
        text = f"{head}.{frac[:6]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _lookup(doc: Doc, path: str) -> Any:
    value: Any = doc
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _compare(left: Any, op: str, right: Any, dates: bool) -> bool:
    if dates:
        left, right = _as_datetime(left), _as_datetime(right)
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        return bool(
            {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[op]
        )
    except TypeError:
        return False


@dataclass
class _Parser:
    text: str
    tokens: list[tuple[str, str]]
    pos: int = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise _invalid(self.text, "an incomplete expression")
        self.pos += 1
        return token

    def expression(self) -> Predicate:
        terms = [self.term()]
        while (token := self.peek()) is not None and token[0] == "word":
            word = token[1].lower()
            if word != "and":
                raise _invalid(self.text, f"'{token[1]}'")
            self.take()
            terms.append(self.term())
        return lambda doc: all(t(doc) for t in terms)

    def term(self) -> Predicate:
        kind, raw = self.take()
        if kind == "lp":
            inner = self.expression()
            if self.take()[0] != "rp":
                raise _invalid(self.text, "an unbalanced parenthesis")
            return inner
        if kind != "word":
            raise _invalid(self.text, f"'{raw}'")
        if raw.lower() == _EXT:
            return self.extended_property()
        if raw not in FILTERABLE:
            raise _invalid(self.text, f"the property or function '{raw}'")
        op_kind, op = self.take()
        if op_kind != "word" or op.lower() not in _OPS:
            raise _invalid(self.text, f"the operator '{op}'")
        value = _literal(*self.take(), self.text)
        path, operator, dates = raw, op.lower(), raw in _DATES
        return lambda doc: _compare(_lookup(doc, path), operator, value, dates)

    def extended_property(self) -> Predicate:
        """`(ep: ep/id eq '…' [and ep/value eq '…'])`."""
        if self.take()[0] != "lp":
            raise _invalid(self.text, "the lambda")
        var_kind, var = self.take()
        if var_kind != "word" or self.take()[0] != "colon":
            raise _invalid(self.text, "the lambda variable")
        wanted: dict[str, Any] = {}
        while True:
            kind, raw = self.take()
            field = raw.lower().removeprefix(f"{var.lower()}/")
            if kind != "word" or field not in ("id", "value") or field in wanted:
                raise _invalid(self.text, f"'{raw}' inside the extended-property lambda")
            if self.take()[1].lower() != "eq":
                raise _invalid(self.text, "an operator other than eq in the lambda")
            wanted[field] = _literal(*self.take(), self.text)
            kind, raw = self.take()
            if kind == "rp":
                break
            if raw.lower() != "and":
                raise _invalid(self.text, f"'{raw}' inside the extended-property lambda")
        if "id" not in wanted:
            raise _invalid(self.text, "an extended-property lambda without ep/id")

        def matches(doc: Doc) -> bool:
            for prop in doc.get("singleValueExtendedProperties") or []:
                if str(prop.get("id", "")).lower() != str(wanted["id"]).lower():
                    continue
                if "value" not in wanted or prop.get("value") == wanted["value"]:
                    return True
            return False

        return matches


def parse_filter(text: str) -> Predicate:
    parser = _Parser(text, _tokens(text))
    predicate = parser.expression()
    if parser.peek() is not None:
        raise _invalid(text, f"'{parser.peek()[1]}'")  # type: ignore[index]
    return predicate


# --- $orderby --------------------------------------------------------------------------------

ORDERABLE = frozenset(
    {"subject", "createdDateTime", "lastModifiedDateTime", "start/dateTime", "end/dateTime"}
)


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    """[(path, descending)]."""
    keys: list[tuple[str, bool]] = []
    for clause in text.split(","):
        words = clause.split()
        if not words or len(words) > 2 or words[0] not in ORDERABLE:
            raise GraphError(400, "BadRequest", f"Invalid $orderby '{text}': {NOT_EMULATED}.")
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise GraphError(400, "BadRequest", f"Invalid $orderby '{text}': {NOT_EMULATED}.")
        keys.append((words[0], direction == "desc"))
    return keys


def _sort_key(doc: Doc, path: str) -> tuple[int, Any]:
    value = _lookup(doc, path)
    if path in _DATES:
        value = _as_datetime(value)
    return (0, "") if value is None else (1, value)


def refine(request: Request, items: Iterable[T], doc_of: Callable[[T], Doc]) -> list[T]:
    """Apply the request's `$filter` and `$orderby` to a list answer's items (before paging);
    `doc_of` renders an item as Graph's JSON (UTC, extended properties included)."""
    raw_filter = _option(request, "$filter")
    raw_order = _option(request, "$orderby")
    listed = list(items)
    if not raw_filter and not raw_order:
        return listed
    docs = [(item, doc_of(item)) for item in listed]
    if raw_filter:
        predicate = parse_filter(raw_filter)
        docs = [(item, doc) for item, doc in docs if predicate(doc)]
    for path, descending in reversed(parse_orderby(raw_order) if raw_order else []):
        docs.sort(key=lambda pair: _sort_key(pair[1], path), reverse=descending)
    return [item for item, _ in docs]


def _option(request: Request, name: str) -> str | None:
    for key, value in request.query_params.multi_items():
        if key.lower() == name:
            return value
    return None
