"""Published schemas must stay backward compatible; the checker itself must catch breakage."""

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from npsloop_schemas.compat import breaking_changes
from npsloop_schemas.export import asyncapi, event_schemas

SNAPSHOTS = Path(__file__).resolve().parents[1] / "jsonschema"
CURRENT = event_schemas()


def test_every_event_has_a_published_snapshot() -> None:
    published = {p.stem for p in SNAPSHOTS.glob("*.json")}
    missing = set(CURRENT) - published
    assert not missing, f"export new events with `make schemas`: {sorted(missing)}"


@pytest.mark.parametrize("tag", sorted(p.stem for p in SNAPSHOTS.glob("*.json")))
def test_published_schema_is_still_compatible(tag: str) -> None:
    assert tag in CURRENT, f"{tag} was published and must not disappear; add a new version instead"
    old = json.loads((SNAPSHOTS / f"{tag}.json").read_text())
    problems = breaking_changes(old, CURRENT[tag])
    assert not problems, f"{tag} changed incompatibly; add a v2 and an upcaster:\n" + "\n".join(problems)


def payload_props(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema["properties"]["payload"]["$ref"].split("/")[-1]
    return schema["$defs"][ref]  # type: ignore[no-any-return]


BASE = CURRENT["feedback.received.v1"]


def mutated(fn: Any) -> dict[str, Any]:
    new = copy.deepcopy(BASE)
    fn(new)
    return new


def test_identical_schema_is_compatible() -> None:
    assert breaking_changes(BASE, copy.deepcopy(BASE)) == []


def test_new_optional_field_is_compatible() -> None:
    new = mutated(lambda s: payload_props(s)["properties"].update(mood={"type": "string"}))
    assert breaking_changes(BASE, new) == []


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (lambda s: payload_props(s)["required"].append("comment"), "newly required"),
        (lambda s: payload_props(s)["properties"].pop("store_id"), "field removed"),
        (lambda s: payload_props(s)["properties"]["score"].update(maximum=5), "maximum tightened"),
        (lambda s: payload_props(s)["properties"]["score"].update(type="string"), "type changed"),
        (lambda s: s["$defs"]["Channel"]["enum"].remove("pos"), "enum narrowed"),
        (lambda s: s["properties"]["schema_version"].update(const=2), "const changed"),
    ],
)
def test_incompatible_changes_are_caught(change: Any, expect: str) -> None:
    problems = breaking_changes(BASE, mutated(change))
    assert any(expect in p for p in problems), problems


def test_asyncapi_lists_every_topic_and_message() -> None:
    doc = asyncapi()
    addresses = {c["address"] for c in doc["channels"].values()}
    topics = {"feedback.received.v1", "feedback.classified.v1", "case.events.v1"}
    topics |= {"notification.requested.v1", "notification.status.v1"}
    assert addresses == topics | {f"{t}.dlq.{{group}}" for t in topics}
    messages = doc["components"]["messages"]
    assert set(messages) == {t.replace(".", "_") for t in CURRENT} | {"dead_letter"}
    assert set(messages["dead_letter"]["headers"]["required"]) == {
        "npsloop-dlq-reason", "npsloop-dlq-error-type", "npsloop-dlq-source", "npsloop-dlq-group",
    }  # fmt: skip
    key = messages["feedback_received_v1"]["bindings"]["kafka"]["key"]
    assert "tenant>:anon:<event_id>" in key["description"]
    assert all(re.fullmatch(key["pattern"], k) for k in key["examples"])
    published = json.loads((SNAPSHOTS.parent / "asyncapi.json").read_text())
    assert published == doc, "asyncapi.json is stale: run `make schemas`"
