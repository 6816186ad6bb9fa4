"""The contract check: every Graph answer the emulator gives is run through the v1.0 CSDL
types (metadata/): property names, value types, enum members, nullability. An unknown or
mistyped property is a violation: the emulator would be teaching its clients a Graph that
doesn't exist.

On by default (it costs one JSON parse per answer); `SMVUE_EMULATOR_CONTRACT_CHECK=0` turns
it off. Violations are kept on `state.contract` (and `GET /_emulator/contract`); the test
fixtures that run an emulator fail a test whose emulator recorded any
(tests/fixtures/emulator.py, tests/emulator/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emulators.msgraph.metadata import Metadata, element_type, metadata, short

ENV_SWITCH = "SMVUE_EMULATOR_CONTRACT_CHECK"
_ANNOTATIONS = frozenset(
    {"@odata.context", "@odata.etag", "@odata.type", "@odata.id", "@odata.editLink"}
)
_COLLECTION_KEYS = frozenset(
    {"@odata.context", "@odata.nextLink", "@odata.deltaLink", "@odata.count", "value"}
)
_OWNER = r"/v1\.0/(?:me|users/[^/]+)"
# (method or "*", path regex, CSDL type, collection?)
_ANSWERS: list[tuple[str, re.Pattern[str], str, bool]] = [
    ("*", re.compile(rf"^{_OWNER}$"), "user", False),
    ("*", re.compile(rf"^{_OWNER}/calendar$"), "calendar", False),
    ("*", re.compile(rf"^{_OWNER}/calendars$"), "calendar", True),
    ("GET", re.compile(rf"^{_OWNER}/events$"), "event", True),
    ("POST", re.compile(rf"^{_OWNER}/events$"), "event", False),
    ("*", re.compile(rf"^{_OWNER}/events/[^/]+$"), "event", False),
    ("*", re.compile(rf"^{_OWNER}/events/[^/]+/instances$"), "event", True),
    (
        "*",
        re.compile(rf"^{_OWNER}(?:/calendar)?/calendarView(?:/[^/]*delta(?:\(\))?)?$"),
        "event",
        True,
    ),
    ("GET", re.compile(r"^/v1\.0/subscriptions$"), "subscription", True),
    ("POST", re.compile(r"^/v1\.0/subscriptions$"), "subscription", False),
    ("*", re.compile(r"^/v1\.0/subscriptions/[^/]+$"), "subscription", False),
]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Violation:
    method: str
    path: str
    status: int
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status}: " + "; ".join(self.problems)


@dataclass
class ContractCheck:
    enabled: bool = True
    violations: deque[Violation] = field(default_factory=lambda: deque(maxlen=200))

    @classmethod
    def from_env(cls) -> ContractCheck:
        return cls(
            enabled=os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "off", "false")
        )

    def observe(self, method: str, path: str, status: int, raw: bytes, content_type: str) -> None:
        """Check one answer (called by the traffic middleware for every /v1.0 call)."""
        if not self.enabled or not raw or "json" not in content_type:
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self.violations.append(Violation(method, path, status, ("the body is not JSON",)))
            return
        problems = check_answer(method, path, status, body)
        if problems:
            self.violations.append(Violation(method, path, status, tuple(problems)))

    def clear(self) -> None:
        self.violations.clear()


def answer_type(method: str, path: str) -> tuple[str, bool] | None:
    for wanted, pattern, type_name, many in _ANSWERS:
        if wanted in ("*", method) and pattern.match(path):
            return type_name, many
    return None


def check_answer(method: str, path: str, status: int, body: Any) -> list[str]:
    """What is wrong with this answer, judged by the CSDL (empty: nothing)."""
    if status >= 400:
        return _check_error(body)
    expected = answer_type(method, path)
    if expected is None:
        return []
    type_name, many = expected
    md = metadata()
    if not isinstance(body, dict):
        return [f"the answer is {type(body).__name__}, not an object"]
    if not many:
        return _check_structured(md, type_name, body, "", top=True)
    problems = [
        f"unknown key '{k}' on a collection answer" for k in body if k not in _COLLECTION_KEYS
    ]
    items = body.get("value")
    if not isinstance(items, list):
        return [*problems, "a collection answer without a 'value' list"]
    for index, item in enumerate(items):
        where = f"value[{index}]"
        if isinstance(item, dict) and "@removed" in item:
            extra = set(item) - {"@odata.type", "id", "@removed"}
            if extra or not isinstance(item.get("id"), str):
                problems.append(f"{where}: a removed item carries {sorted(extra)}")
            continue
        if isinstance(item, dict) and "@odata.context" in item:
            problems.append(f"{where}: @odata.context on a list item (once per answer)")
        problems += _check_structured(md, type_name, item, where, top=False)
    return problems


def _check_error(body: Any) -> list[str]:
    """learn.microsoft.com/graph/errors: {"error": {"code", "message", "innerError"}}."""
    if not isinstance(body, dict) or set(body) != {"error"} or not isinstance(body["error"], dict):
        return ["an error answer that isn't Graph's {\"error\": {...}} body"]
    error = body["error"]
    problems = [
        f"error.{k}: not a string" for k in ("code", "message") if not isinstance(error.get(k), str)
    ]
    problems += [
        f"error: unknown key '{k}'"
        for k in error
        if k not in ("code", "message", "innerError", "details", "target")
    ]
    inner = error.get("innerError")
    if inner is not None:
        if not isinstance(inner, dict):
            problems.append("error.innerError: not an object")
        else:
            problems += [
                f"error.innerError: unknown key '{k}'"
                for k in inner
                if k not in ("date", "request-id", "client-request-id", "code")
            ]
    return problems


def _check_structured(
    md: Metadata, type_name: str, value: Any, where: str, *, top: bool
) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where or type_name}: {type(value).__name__} where a {type_name} object belongs"]
    properties = md.all_properties(type_name)
    navigation = md.all_navigation(type_name)
    problems: list[str] = []
    for key, item in value.items():
        at = f"{where}.{key}" if where else key
        if key.startswith("@"):
            if key not in _ANNOTATIONS:
                problems.append(f"{at}: unknown annotation")
            elif key == "@odata.context" and not top:
                problems.append(f"{at}: @odata.context inside an answer")
            continue
        if "@" in key:  # property annotation, e.g. "value@odata.nextLink"
            if key.split("@", 1)[0] not in properties | navigation:
                problems.append(f"{at}: annotation of an unknown property")
            continue
        prop = properties.get(key) or navigation.get(key)
        if prop is None:
            problems.append(f"{at}: not a property of {type_name}")
            continue
        problems += _check_value(md, prop.type, prop.nullable, item, at)
    return problems


def _check_value(md: Metadata, type_ref: str, nullable: bool, value: Any, at: str) -> list[str]:
    inner, many = element_type(type_ref)
    if value is None:
        return [] if nullable else [f"{at}: null, but {type_ref} isn't nullable"]
    if many:
        if not isinstance(value, list):
            return [f"{at}: {type(value).__name__} where {type_ref} belongs"]
        problems: list[str] = []
        for index, element in enumerate(value):
            problems += _check_value(md, inner, False, element, f"{at}[{index}]")
        return problems
    if inner.startswith("Edm."):
        return _check_primitive(inner, value, at)
    name = short(inner)
    if name in md.enums:
        if not isinstance(value, str):
            return [f"{at}: {value!r} where a {name} member belongs"]
        bad = [v for v in value.split(",") if v.strip() not in md.enums[name]]
        return [f"{at}: '{value}' is not a member of {name}"] if bad else []
    if name in md.types:
        return _check_structured(md, name, value, at, top=False)
    return []  # a type outside the extract: not judged


def _check_primitive(edm: str, value: Any, at: str) -> list[str]:
    ok: bool
    if edm == "Edm.String":
        ok = isinstance(value, str)
    elif edm == "Edm.Boolean":
        ok = isinstance(value, bool)
    elif edm in ("Edm.Int32", "Edm.Int64", "Edm.Int16", "Edm.Byte"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif edm in ("Edm.Double", "Edm.Single", "Edm.Decimal"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif edm == "Edm.DateTimeOffset":
        ok = isinstance(value, str) and _is_datetime_offset(value)
    elif edm == "Edm.Date":
        ok = isinstance(value, str) and bool(_DATE.match(value))
    elif edm == "Edm.TimeOfDay":
        ok = isinstance(value, str) and bool(_TIME.match(value))
    elif edm == "Edm.Guid":
        ok = isinstance(value, str) and bool(_GUID.match(value))
    else:
        ok = isinstance(value, str)  # Binary, Duration, Stream: strings on the wire
    return [] if ok else [f"{at}: {value!r} is not an {edm}"]


def _is_datetime_offset(text: str) -> bool:
    """ISO 8601 with an offset or Z (up to 7 fractional digits, as Graph writes them)."""
    match = re.fullmatch(
        r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})", text
    )
    if match is None:
        return False
    try:
        datetime.fromisoformat(match.group(1))
    except ValueError:
        return False
    return True
