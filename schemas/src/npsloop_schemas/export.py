"""Export a JSON Schema per event and an AsyncAPI 3.0 document for the topics.

python -m npsloop_schemas.export schemas/jsonschema      (make schemas)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .registry import EVENT_TYPES, Topics


def event_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) of every event, keyed by '<event_type>.v<version>'."""
    out: dict[str, dict[str, Any]] = {}
    for tag, (model, _topic) in EVENT_TYPES.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://npsloop.dev/schemas/{tag}.json"
        out[tag] = schema
    return out


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for tag, (_model, topic) in EVENT_TYPES.items():
        name = tag.replace(".", "_")
        messages[name] = {
            "name": tag,
            "contentType": "application/json",
            "payload": {"$ref": f"jsonschema/{tag}.json"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "tenant:customer_id"}}},
        }
        channel = channels.setdefault(topic.replace(".", "_"), {"address": topic, "messages": {}})
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
    for key, channel in channels.items():
        operations[f"publish_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"Events on {channel['address']}; poison messages go to "
            f"{Topics.dlq(channel['address'], '<consumer-group>')}",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "npsloop events", "version": "1.0.0"},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for tag, schema in event_schemas().items():
        path = directory / f"{tag}.json"
        path.write_text(dump(schema))
        written.append(path)
    path = directory.parent / "asyncapi.json"
    path.write_text(dump(asyncapi()))
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0] if args else "schemas/jsonschema")
    for path in write_all(directory):
        print(path)


if __name__ == "__main__":
    main()
