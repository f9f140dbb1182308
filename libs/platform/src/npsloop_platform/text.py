"""Text as every HTTP input takes it: NFC-normalised, and never a NUL, another control character or
a lone surrogate, which no UTF-8 encoder (Kafka, PostgreSQL) can carry."""

from __future__ import annotations

import re
import unicodedata

from pydantic import AfterValidator

#: Tabs and newlines are fine; the rest of C0, DEL and surrogates are not.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def clean_text(value: str) -> str:
    """NFC-normalised, and refused when it holds a NUL, a control character or a lone surrogate."""
    if value.isascii() and value.isprintable():  # most input: nothing to refuse, already NFC
        return value
    bad = _FORBIDDEN.search(value)
    if bad:
        raise ValueError(
            f"contains the character U+{ord(bad.group()):04X} at position {bad.start()}, which is not allowed"
        )
    return unicodedata.normalize("NFC", value)


#: An identifier in a path, query or admin field (a store, customer, assignee, visit id): any text
#: but no control character at all, tabs and newlines included. Use as `pattern=ID_PATTERN`.
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"

#: Use as `Annotated[str, CleanText]`.
CleanText = AfterValidator(clean_text)
