import io
import json
import logging

from npsloop_platform.logging import configure_logging, mask_pii, pii_hash


def test_mask_pii_hides_emails_and_phone_numbers() -> None:
    text = mask_pii("mail ann.smith@example.com or call +49 151 1234567, order 12345")
    assert "ann.smith" not in text and "a***@example.com" in text
    assert "1234567" not in text and "***67" in text
    assert "order 12345" in text  # short numbers are not phone numbers


def test_json_logs_never_carry_pii() -> None:
    configure_logging("INFO", json=True, service="test")
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    logging.getLogger("x").info("sent to %s", "bob@example.org", extra={"phone": "+44 20 7946 0958"})
    record = json.loads(stream.getvalue())
    assert record["service"] == "test" and record["level"] == "INFO"
    assert "bob@" not in record["message"] and "b***@example.org" in record["message"]
    assert "7946" not in record["phone"]


def test_pii_hash_is_stable_and_case_insensitive() -> None:
    assert pii_hash("Ann@Example.com") == pii_hash(" ann@example.com ") != pii_hash("bob@example.com")
    assert pii_hash(None) is None


KEEP = [
    "127.0.0.1:29392",
    "10.0.0.12",
    "[::1]:8080",
    "2026-11-25T03:12:45.123456+00:00",
    "2026-11-25 03:12:45,123",
    "12:30:01",
    "0b6f7a4e-2d55-4a3c-9e1f-7c8d9e0f1a2b",
    "feedback.received.v1[2]@10345",
    "retrying in 0.2s",
    "offset 1795578122",
    "aiokafka 0.14.0",
]
MASK = ["+49 151 1234567", "+44 20 7946 0958", "(555) 123-4567", "555-123-4567", "+1-555-123-4567", "015112345678"]


def test_addresses_ports_timestamps_and_ids_are_left_alone() -> None:
    for text in KEEP:
        assert mask_pii(f"at {text} done") == f"at {text} done", text


def test_phone_numbers_in_every_usual_form_are_masked() -> None:
    for phone in MASK:
        masked = mask_pii(f"call {phone} now")
        assert masked == f"call ***{phone[-2:]} now", (phone, masked)


def capture(json: bool) -> io.StringIO:
    configure_logging("INFO", json=json, service="test")
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    return stream


def test_tracebacks_and_the_input_they_quote_are_masked() -> None:
    from pydantic import BaseModel, ValidationError

    class Body(BaseModel):
        email: int
        score: int

    for json_logs in (True, False):
        stream = capture(json_logs)
        try:
            Body.model_validate({"email": "bob@example.org", "score": "+49 151 1234567 x"})
        except ValidationError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        try:
            raise ValueError("bad contact ann@example.com +49 151 1234567")
        except ValueError:
            logging.getLogger("x").error("failed", exc_info=True, stack_info=True)
        out = stream.getvalue()
        assert "Traceback" in out and "ValueError" in out
        for secret in ("bob@example.org", "ann@example.com", "151 1234567"):
            assert secret not in out, (json_logs, secret)


def test_event_and_correlation_ids_are_fields_in_json_and_bracketed_in_text() -> None:
    ids = {"event_id": "0b6f7a4e-2d55-4a3c-9e1f-7c8d9e0f1a2b", "correlation_id": "6f1c1b7e-8a40-4b8e-9f5e-1d0c2a3b4c5d"}
    stream = capture(True)
    logging.getLogger("c").warning("dead-lettering", extra=ids)
    record = json.loads(stream.getvalue())
    assert record["event_id"] == ids["event_id"] and record["correlation_id"] == ids["correlation_id"]
    stream = capture(False)
    logging.getLogger("c").warning("dead-lettering", extra=ids)
    assert stream.getvalue().rstrip().endswith(f"[event_id={ids['event_id']} correlation_id={ids['correlation_id']}]")


def test_free_text_is_redacted_to_its_length() -> None:
    from npsloop_platform.logging import redact_free_text

    assert redact_free_text("The staff was rude to me") == "<redacted 24 chars>"
    assert redact_free_text(None) == "<none>"


def test_dates_in_day_month_year_order_are_left_alone() -> None:
    for text in ("25.11.2026", "11/25/2026", "25-11-2026", "2026/11/25"):
        assert mask_pii(f"due {text} ok") == f"due {text} ok", text


def test_a_phone_next_to_other_numbers_is_still_masked() -> None:
    # The candidate run spans every group of digits; the phone inside it must not escape with the rest.
    assert mask_pii("order 12345 015112345678") == "order 12345 ***78"
    assert mask_pii("on 2026-11-25 0151 1234567") == "on 2026-11-25 ***67"
    assert mask_pii("from 10.0.0.12 +49 151 1234567 now") == "from 10.0.0.12 ***67 now"
    assert mask_pii("at 12:30:01 +44 20 7946 0958") == "at 12:30:01 ***58"
    assert mask_pii("call 0151 1234567. 12 times") == "call ***67. 12 times"
    assert mask_pii("peer 10.0.0.12:8000 0151 1234567") == "peer 10.0.0.12:8000 ***67"  # the port stays


def test_phone_written_after_a_scheme_or_in_json_is_masked() -> None:
    assert mask_pii("<a href='tel:+4915112345678'>") == "<a href='tel:***78'>"
    assert mask_pii('{"phone": "+4915112345678"}') == '{"phone": "***78"}'


def test_emails_with_non_ascii_local_parts_keep_only_the_first_letter() -> None:
    assert mask_pii("from jörg.müller@example.de") == "from j***@example.de"


def test_masking_is_idempotent() -> None:
    once = mask_pii("ann@example.com +49 151 1234567 127.0.0.1:29392")
    assert mask_pii(once) == once == "a***@example.com ***67 127.0.0.1:29392"


def test_free_text_can_keep_a_masked_single_line_prefix() -> None:
    from npsloop_platform.logging import redact_free_text

    comment = "Mail ann@example.com\nthe staff was rude"
    assert redact_free_text(comment, keep=0) == f"<redacted {len(comment)} chars>"
    assert redact_free_text(comment, keep=9) == f"Mail a***… <redacted {len(comment)} chars>"
    assert redact_free_text(comment, keep=20) == f"Mail a***@example.co… <redacted {len(comment)} chars>"
    assert "\n" not in redact_free_text(comment, keep=100)
    assert redact_free_text("", keep=5) == "<redacted 0 chars>"
