"""Lineage ids: an event derived from another gets an id computed from its cause.

Reprocessing the same input therefore yields the very same output ids (a classified event, a case,
a delivery, a status report), and every consumer's dedupe on `event_id` holds across redeliveries.
"""

from __future__ import annotations

import hashlib
import uuid

#: One namespace for every derived id. Never change it: ids already stored would stop matching.
LINEAGE = uuid.UUID("0b6f7a4e-2d55-4a3c-9e1f-7c8d9e0f1a2b")


_NAMESPACE = LINEAGE.bytes
_VERSION_5 = ~(0xF000 << 64) & ~(0xC000 << 48), (5 << 76) | (0x8000 << 48)  # RFC 4122 bits: mask, set


def derive_id(kind: str, source: uuid.UUID) -> uuid.UUID:
    """The id of the `kind` derived from `source`: `derive_id("case", feedback_event_id)`.

    `uuid.uuid5(LINEAGE, f"{kind}:{source}")`, computed without `UUID(bytes=..., version=...)`,
    which was a third of its time (one per event a consumer publishes)."""
    digest = hashlib.sha1(_NAMESPACE + f"{kind}:{source}".encode(), usedforsecurity=False).digest()
    mask, bits = _VERSION_5
    return uuid.UUID(int=(int.from_bytes(digest[:16]) & mask) | bits)
