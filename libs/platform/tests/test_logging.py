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
