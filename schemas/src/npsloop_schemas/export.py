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


#: The message key of every event: one customer's events share it, so they stay in order.
MESSAGE_KEY = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*:(anon:[0-9a-f-]{36}|.+)$",
    "description": "`<tenant>:<customer_id>`, or `<tenant>:anon:<event_id>` when the customer is unknown (the "
    "event_id of the answer that started the journey). One customer's events share the key and so stay in order.",
    "examples": ["acme:c-42", "acme:anon:5b9f3c1e-8f2a-4c7b-9d1e-2a3b4c5d6e7f"],
}

#: What a consumer adds to a message it dead-letters (`<topic>.dlq.<consumer-group>`), next to the
#: original bytes and the original headers.
DLQ_HEADERS = {
    "npsloop-dlq-reason": "Why: the fields and rules that failed, never the input itself.",
    "npsloop-dlq-error-type": "The error's class, e.g. ValidationError, PermanentError.",
    "npsloop-dlq-source": "Where the message was: `<topic>[<partition>]@<offset>`.",
    "npsloop-dlq-group": "The consumer group that gave up on it.",
}


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
            "bindings": {"kafka": {"key": MESSAGE_KEY}},
        }
        channel = channels.setdefault(topic.replace(".", "_"), {"address": topic, "messages": {}})
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
    messages["dead_letter"] = {
        "name": "dead-letter",
        "summary": "A message a consumer could not handle: its original bytes, key and headers, plus these headers.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": sorted(DLQ_HEADERS),
            "properties": {h: {"type": "string", "description": d} for h, d in DLQ_HEADERS.items()},
        },
        "payload": {"description": "The original message value, byte for byte (it may not be valid JSON)."},
        "bindings": {"kafka": {"key": {"type": "string", "description": "The original message key."}}},
    }
    for key, channel in list(channels.items()):
        address = channel["address"]
        operations[f"publish_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"Events on {address}; poison messages go to {Topics.dlq(address, '<consumer-group>')}",
        }
        dlq_key = f"{key}_dlq"
        channels[dlq_key] = {
            "address": Topics.dlq(address, "{group}"),
            "description": f"Dead letters of {address}, one topic per consumer group.",
            "parameters": {"group": {"description": "The consumer group, e.g. npsloop-actions."}},
            "messages": {"dead_letter": {"$ref": "#/components/messages/dead_letter"}},
        }
        operations[f"dead_letter_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{dlq_key}"},
            "summary": f"A consumer of {address} dead-letters a poison message with its reason.",
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
