"""Whatever a published JSON Schema accepts, the models accept: messages generated from each file in
schemas/jsonschema/ (hypothesis-jsonschema), as a producer in another language would write them,
parse with the Python models into the event type the file describes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from npsloop_schemas import EVENT_TYPES, parse_event

SNAPSHOTS = Path(__file__).resolve().parents[1] / "jsonschema"


def published(tag: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SNAPSHOTS / f"{tag}.json").read_text())
    return schema


@pytest.mark.parametrize("tag", sorted(EVENT_TYPES))
def test_every_message_the_published_schema_accepts_parses(tag: str) -> None:
    model, _topic = EVENT_TYPES[tag]
    other = next(m for m, _ in EVENT_TYPES.values() if m is not model)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    # Formats are assertions here, as with ajv + ajv-formats: a uuid is a UUID, a date-time RFC 3339.
    @given(from_schema(published(tag), custom_formats={"uuid": st.uuids().map(str)}))
    def check(message: dict[str, Any]) -> None:
        raw = json.dumps(message)
        event = parse_event(raw)
        assert type(event) is model
        assert str(event.event_id) == message["event_id"].lower()
        for guess in (model, other):  # a consumer's guess gives the same event, right or wrong
            guessed = parse_event(raw, expect=[guess])
            # recorded_at, when the message has none, is the time of parsing
            assert type(guessed) is model
            assert guessed.model_dump(exclude={"recorded_at"}) == event.model_dump(exclude={"recorded_at"})
            assert ("recorded_at" not in message) or guessed.recorded_at == event.recorded_at

    check()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.integers(0, 10).map(float))
def test_an_integral_float_score_is_the_integer(score: float) -> None:
    """JSON Schema's integer admits 10.0, so the models must too (kcat/ajv producers do send it)."""
    schema = published("feedback.received.v1")
    message = {
        "event_id": "5b9f3c1e-8f2a-4c7b-9d1e-2a3b4c5d6e7f",
        "event_type": "feedback.received",
        "schema_version": 1,
        "occurred_at": "2026-11-23T10:15:00+01:00",
        "tenant_id": "acme",
        "source": "kcat",
        "correlation_id": "5b9f3c1e-8f2a-4c7b-9d1e-2a3b4c5d6e7f",
        "payload": {"score": score, "channel": "pos"},
    }
    assert schema["$defs"]["FeedbackReceivedPayloadV1"]["properties"]["score"]["type"] == "integer"
    event = parse_event(json.dumps(message))
    assert event.payload.score == int(score) and isinstance(event.payload.score, int)  # type: ignore[union-attr]
