"""Graph v1.0's metadata (CSDL) for the types the calendar integration touches.

`graph-v1.0-calendar-types.csdl.xml` is an extract of Microsoft's published v1.0 metadata
(microsoftgraph/msgraph-metadata, schemas/v1.0-Prod.csdl, MIT licence). The emulator reads it
to tell a path segment Graph knows (but the emulator doesn't serve: 501) from one Graph
doesn't know (400), and the contract check (`contract.py`) validates every answer against it.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

CSDL_FILE = Path(__file__).with_name("graph-v1.0-calendar-types.csdl.xml")
_NS = "{http://docs.oasis-open.org/odata/ns/edm}"


@dataclass(frozen=True)
class Property:
    name: str
    type: str  # "Edm.String", "graph.location", "Collection(graph.attendee)"...
    nullable: bool = True


@dataclass
class StructuredType:
    name: str
    base: str | None
    entity: bool
    properties: dict[str, Property] = field(default_factory=dict)
    navigation: dict[str, Property] = field(default_factory=dict)


@dataclass
class Metadata:
    enums: dict[str, frozenset[str]]
    types: dict[str, StructuredType]
    actions: dict[str, frozenset[str]]  # bound type → action names

    def all_properties(self, type_name: str) -> dict[str, Property]:
        """Structural properties of a type and its base types."""
        out: dict[str, Property] = {}
        current: str | None = type_name
        while current is not None and current in self.types:
            t = self.types[current]
            out = {**t.properties, **out}
            current = t.base
        return out

    def all_navigation(self, type_name: str) -> dict[str, Property]:
        out: dict[str, Property] = {}
        current: str | None = type_name
        while current is not None and current in self.types:
            t = self.types[current]
            out = {**t.navigation, **out}
            current = t.base
        return out


def short(type_name: str) -> str:
    """`graph.event` / `microsoft.graph.event` → `event`."""
    return type_name.removeprefix("microsoft.").removeprefix("graph.")


def element_type(type_name: str) -> tuple[str, bool]:
    """`Collection(graph.x)` → ("graph.x", True); "Edm.String" → ("Edm.String", False)."""
    if type_name.startswith("Collection(") and type_name.endswith(")"):
        return type_name[len("Collection(") : -1], True
    return type_name, False


def _prop(node: ET.Element) -> Property:
    return Property(
        name=node.attrib["Name"],
        type=node.attrib["Type"],
        nullable=node.attrib.get("Nullable", "true") != "false",
    )


@functools.cache
def metadata() -> Metadata:
    root = ET.parse(CSDL_FILE).getroot()  # noqa: S314 - our own packaged file, not input
    enums: dict[str, frozenset[str]] = {}
    types: dict[str, StructuredType] = {}
    actions: dict[str, set[str]] = {}
    for node in root:
        tag = node.tag.removeprefix(_NS)
        name = node.attrib.get("Name", "")
        if tag == "EnumType":
            enums[name] = frozenset(m.attrib["Name"] for m in node.iter(f"{_NS}Member"))
        elif tag in ("EntityType", "ComplexType"):
            base = node.attrib.get("BaseType")
            t = StructuredType(name, short(base) if base else None, tag == "EntityType")
            for child in node:
                child_tag = child.tag.removeprefix(_NS)
                if child_tag == "Property":
                    t.properties[child.attrib["Name"]] = _prop(child)
                elif child_tag == "NavigationProperty":
                    t.navigation[child.attrib["Name"]] = _prop(child)
            types[name] = t
        elif tag in ("Action", "Function"):
            params = list(node.iter(f"{_NS}Parameter"))
            if params and node.attrib.get("IsBound") == "true":
                bound = short(element_type(params[0].attrib["Type"])[0])
                actions.setdefault(bound, set()).add(name)
    # Bound functions the extract leaves out but Graph documents on these types
    # (event-delta: "GET /me/calendarView/delta").
    actions.setdefault("event", set()).add("delta")
    return Metadata(enums, types, {k: frozenset(v) for k, v in actions.items()})
