"""Generates `schemas/`: one JSON Schema per message type and an AsyncAPI 3 document.

`smvue-sync schemas check` (run by the test suite) fails when the checked-in files differ
from what the pydantic contracts generate, so the published contracts never drift.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.contracts.envelope import Envelope
from shared.contracts.topics import ALL_TOPICS, DEAD_LETTER_CONFIG, all_message_types

ASYNCAPI_FILE = "asyncapi.json"
MESSAGES_DIR = "messages"


def message_name(message: type[Envelope]) -> str:
    return str(message.model_fields["type"].default)


def message_schema(message: type[Envelope]) -> dict[str, Any]:
    schema = message.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://schemas.smvue.com/calendar/{message_name(message)}.json"
    return schema


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for message in all_message_types():
        name = message_name(message)
        messages[name.replace(".", "_")] = {
            "name": name,
            "title": message.__name__,
            "summary": (message.__doc__ or "").strip().splitlines()[0] if message.__doc__ else "",
            "contentType": "application/json",
            "payload": {"$ref": f"./{MESSAGES_DIR}/{name}.json"},
        }
    for topic in ALL_TOPICS:
        channel_id = topic.name.replace(".", "_")
        channels[channel_id] = {
            "address": topic.name,
            "description": f"{topic.description} Key: {topic.key}.",
            "messages": {
                message_name(m).replace(".", "_"): {
                    "$ref": f"#/components/messages/{message_name(m).replace('.', '_')}"
                }
                for m in topic.messages
            },
            "bindings": {
                "kafka": {
                    "topic": topic.name,
                    "partitions": topic.partitions,
                    "topicConfiguration": _kafka_topic_configuration(topic.config),
                    "bindingVersion": "0.5.0",
                }
            },
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
        }
        if topic.has_dead_letter:
            dlq_id = f"{channel_id}_dlq"
            channels[dlq_id] = {
                "address": topic.dead_letter,
                "description": (
                    f"Dead letters of {topic.name}: the original record (value and headers) "
                    "plus `x-dlq-*` headers with the reason."
                ),
                "bindings": {
                    "kafka": {
                        "topic": topic.dead_letter,
                        "topicConfiguration": _kafka_topic_configuration(DEAD_LETTER_CONFIG),
                        "bindingVersion": "0.5.0",
                    }
                },
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "SMVue Outlook Calendar Sync",
            "version": "1.0.0",
            "description": "Topics and messages of the Outlook / Microsoft 365 calendar sync.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _kafka_topic_configuration(config: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "cleanup.policy" in config:
        out["cleanup.policy"] = config["cleanup.policy"].split(",")
    if "retention.ms" in config:
        out["retention.ms"] = int(config["retention.ms"])
    return out


def render_all() -> dict[str, str]:
    """Relative path under `schemas/` → file text."""
    files = {
        f"{MESSAGES_DIR}/{message_name(m)}.json": _dump(message_schema(m))
        for m in all_message_types()
    }
    files[ASYNCAPI_FILE] = _dump(asyncapi_document())
    return files


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def write_schemas(root: Path) -> list[Path]:
    written = []
    for relative, text in render_all().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    expected = {root / relative for relative in render_all()}
    for stale in (root / MESSAGES_DIR).glob("*.json"):
        if stale not in expected:
            stale.unlink()
    return written


def stale_schemas(root: Path) -> list[str]:
    """Paths under `root` that are missing, differ, or should not be there."""
    problems = []
    rendered = render_all()
    for relative, text in rendered.items():
        path = root / relative
        if not path.exists() or path.read_text() != text:
            problems.append(relative)
    for present in (root / MESSAGES_DIR).glob("*.json"):
        if f"{MESSAGES_DIR}/{present.name}" not in rendered:
            problems.append(f"{MESSAGES_DIR}/{present.name}")
    return sorted(problems)
