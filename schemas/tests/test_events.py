import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from npsloop_schemas import (
    Band,
    FeedbackClassifiedV1,
    FeedbackReceivedV1,
    band_for,
    customer_key,
    nps_summary,
    parse_event,
)

EID = "6a0f0d1e-1111-4222-8333-944455556666"


def feedback(**payload_overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {"score": 9, "channel": "pos", **payload_overrides}
    return {
        "event_id": EID,
        "event_type": "feedback.received",
        "schema_version": 1,
        "occurred_at": "2026-11-01T10:00:00+01:00",
        "tenant_id": "acme",
        "source": "till-7",
        "correlation_id": EID,
        "payload": payload,
    }


def errors(data: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        parse_event(json.dumps(data))
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in info.value.errors()]


def test_parses_into_the_right_model() -> None:
    event = parse_event(json.dumps(feedback()))
    assert isinstance(event, FeedbackReceivedV1)
    assert event.payload.score == 9
    assert event.occurred_at.utcoffset() is not None


@pytest.mark.parametrize("score", [-1, 11, 7.5, "7", True, None])
def test_rejects_scores_that_are_not_integers_0_to_10(score: object) -> None:
    errs = errors(feedback(score=score))
    assert any(loc.endswith("payload.score") for loc, _ in errs), errs


def test_accepts_every_integer_score_0_to_10() -> None:
    for score in range(11):
        assert parse_event(json.dumps(feedback(score=score))).payload.score == score  # type: ignore[union-attr]


def test_rejects_naive_datetimes_with_the_field_name() -> None:
    data = feedback()
    data["occurred_at"] = "2026-11-01T10:00:00"
    errs = errors(data)
    assert errs and errs[0][0].endswith("occurred_at")
    assert "timezone" in errs[0][1]


@pytest.mark.parametrize(("event_type", "version"), [("feedback.teleported", 1), ("feedback.received", 9)])
def test_rejects_unknown_event_types_and_versions(event_type: str, version: int) -> None:
    data = feedback()
    data["event_type"], data["schema_version"] = event_type, version
    (_loc, msg), *_ = errors(data)
    assert "Unknown event_type/schema_version" in msg
    assert "feedback.received.v1" in msg  # says what is known


@pytest.mark.parametrize(
    "change",
    [
        {"event_type": "feedback.teleported"},
        {"schema_version": 9},
        {"occurred_at": "2026-11-01T10:00:00"},
        {"event_id": 7},
    ],
)
def test_a_guessed_type_refuses_with_the_same_errors(change: dict[str, object]) -> None:
    raw = json.dumps({**feedback(), **change})
    found = []
    for guess in ([], [FeedbackReceivedV1], [FeedbackClassifiedV1, FeedbackReceivedV1]):
        with pytest.raises(ValidationError) as info:
            parse_event(raw, expect=guess)
        found.append(info.value.errors())
    assert found[0] == found[1] == found[2]


def test_rejects_bad_json() -> None:
    with pytest.raises(ValidationError, match="Invalid JSON"):
        parse_event(b"{not json")


def test_bands_follow_reichheld() -> None:
    assert [band_for(s) for s in range(11)] == [Band.DETRACTOR] * 7 + [Band.PASSIVE] * 2 + [Band.PROMOTER] * 2
    for bad in (-1, 11, 7.0, True):
        with pytest.raises(ValueError, match="integer from 0 to 10"):
            band_for(bad)  # type: ignore[arg-type]


def test_nps_and_margin_of_error() -> None:
    s = nps_summary(promoters=50, passives=30, detractors=20)
    assert s.nps == pytest.approx(30.0)
    # SE = 100*sqrt((p + d - (p - d)^2)/n) = 100*sqrt((0.7 - 0.09)/100) = 7.8102...
    assert s.margin_of_error == pytest.approx(1.96 * 7.810249675906654)
    assert not s.small_sample
    assert nps_summary(1, 0, 1).small_sample
    empty = nps_summary(0, 0, 0)
    assert empty.nps is None and empty.small_sample


def test_customer_key() -> None:
    eid = uuid.UUID(EID)
    assert customer_key("acme", "c-1", eid) == "acme:c-1"
    assert customer_key("acme", None, eid) == f"acme:anon:{eid}"


def test_recorded_at_defaults_to_aware_utc_now() -> None:
    event = parse_event(json.dumps(feedback()))
    assert event.recorded_at.tzinfo is not None
    assert abs((datetime.now(UTC) - event.recorded_at).total_seconds()) < 60


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("+49 151 2345678 ", "+49 151 2345678"),  # stripped, as before
        (" 0151 2345678", "0151 2345678"),
        ("00000 ", "00000 "),  # the published pattern counts the space; stripped, it would be too short
    ],
)
def test_a_phone_the_published_pattern_accepts_is_kept_so_it_parses_again(sent: str, kept: str) -> None:
    """hypothesis-jsonschema found "00000 ": the JSON Schema's pattern accepts it, and stripping
    first made the model refuse it. What the model keeps must itself parse (the next hop)."""
    from pydantic import TypeAdapter

    from npsloop_schemas import Contact

    contact = Contact.model_validate({"phone": sent})
    assert contact.phone == kept
    assert Contact.model_validate_json(contact.model_dump_json()).phone == kept
    assert TypeAdapter(Contact).json_schema()["properties"]["phone"]["anyOf"][0]["pattern"].startswith("^\\+?")


@pytest.mark.parametrize("sent", ["123", "  123  ", "phone: 0151 234", "+"])
def test_a_phone_neither_pattern_accepts_is_refused_as_a_pattern_mismatch(sent: str) -> None:
    from npsloop_schemas import Contact

    with pytest.raises(ValidationError) as caught:
        Contact.model_validate({"phone": sent})
    assert caught.value.errors()[0]["type"] == "string_pattern_mismatch"
