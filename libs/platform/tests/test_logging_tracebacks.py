"""Masking of what a record carries besides a format string: objects, dicts, tracebacks, uvicorn's loggers."""

import io
import json
import logging

from npsloop_platform.logging import configure_logging

SECRETS = ("bob@example.org", "ann@example.com", "151 1234567")


def capture(json_logs: bool) -> io.StringIO:
    configure_logging("INFO", json=json_logs, service="test")
    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    return stream


def assert_masked(out: str) -> None:
    for secret in SECRETS:
        assert secret not in out, (secret, out)


def test_an_exception_logged_as_the_message_is_masked() -> None:
    for json_logs in (True, False):
        stream = capture(json_logs)
        logging.getLogger("x").error(ValueError("bad contact ann@example.com +49 151 1234567"))
        out = stream.getvalue()
        assert "a***@example.com" in out and "***67" in out
        assert_masked(out)


def test_a_dict_message_and_nested_extras_are_masked_and_keep_their_shape() -> None:
    stream = capture(True)
    contact = {"email": "bob@example.org", "phones": ["+49 151 1234567"], "score": 3}
    logging.getLogger("x").info({"event": "contact", "contact": contact}, extra={"to": ("ann@example.com",)})
    record = json.loads(stream.getvalue())
    assert record["event"] == "contact" and record["contact"]["score"] == 3
    assert record["contact"]["email"] == "b***@example.org" and record["contact"]["phones"] == ["***67"]
    assert record["to"] == ["a***@example.com"]
    assert contact["email"] == "bob@example.org"  # the caller's objects are not mutated
    assert_masked(stream.getvalue())


def test_a_traceback_formatted_raw_by_another_handler_first_is_still_masked() -> None:
    stream = capture(False)
    raw = logging.StreamHandler(io.StringIO())  # formats first and caches the raw exc_text on the record
    logging.getLogger("x").addHandler(raw)
    try:
        try:
            raise ValueError("bad contact ann@example.com +49 151 1234567")
        except ValueError:
            logging.getLogger("x").exception("failed")
    finally:
        logging.getLogger("x").removeHandler(raw)
    out = stream.getvalue()
    assert "Traceback" in out and "a***@example.com" in out
    assert_masked(out)


def test_uvicorn_loggers_lose_their_own_handlers_and_go_through_the_masking_one() -> None:
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.addHandler(logging.StreamHandler(io.StringIO()))
        logger.propagate = False
    stream = capture(True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert logging.getLogger(name).handlers == [] and logging.getLogger(name).propagate, name
    try:
        raise RuntimeError("no user bob@example.org")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/1.1" %d', "127.0.0.1:29392", "GET", "/v1/x", 500)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "b***@example.org" in lines[0]["exc_info"] and "RuntimeError" in lines[0]["exc_info"]
    assert lines[1]["message"] == '127.0.0.1:29392 - "GET /v1/x HTTP/1.1" 500'
    assert_masked(stream.getvalue())


def test_stack_info_is_masked_in_both_formats() -> None:
    for json_logs in (True, False):
        stream = capture(json_logs)

        logging.getLogger("x").warning("here", stack_info=True)  # for ann@example.com +49 151 1234567
        out = stream.getvalue()
        assert "Stack (most recent call last)" in out and "for a***@example.com ***67" in out
        assert_masked(out)
