"""The idempotency digest never changes for a body: rows outlive a release, and during a rolling
deploy a retry may reach a replica of the release before. orjson writes the canonical JSON where it
gives json.dumps's bytes, and json.dumps itself everywhere else; these tests hold the two together."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from npsloop_ingest.handlers import FEEDBACK_EXAMPLES, FeedbackIn
from npsloop_ingest.idempotency import body_hash, canonical_json


def legacy(body: Any) -> bytes:
    """The form every stored digest was made of, written out here rather than imported."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)  # past orjson's 64 bits too
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # non-ASCII, DEL, control characters, lone surrogates
    | st.sampled_from(["plain", "a\x7fb", "tab\there", 'quote"back\\slash', "ümlaut", "😀"])
)
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), documents, max_size=8))
def test_canonical_json_is_json_dumps_for_any_document(body: dict[str, Any]) -> None:
    assert canonical_json(body) == legacy(body)


def test_every_ascii_character_in_a_string() -> None:
    for code in range(128):
        body = {"comment": f"a{chr(code)}b", "score": 3, "contact": {"name": None}}
        assert canonical_json(body) == legacy(body), code


def test_types_json_writes_with_default_str() -> None:
    import uuid
    from datetime import UTC, datetime

    body = {"id": uuid.UUID(int=7), "at": datetime(2026, 12, 3, tzinfo=UTC), "n": 10**30}
    assert canonical_json(body) == legacy(body)


def test_the_digest_of_a_posted_answer_is_the_one_stored_by_earlier_releases() -> None:
    for example in FEEDBACK_EXAMPLES:
        body = FeedbackIn.model_validate(example).model_dump(mode="json", exclude={"event_id", "tenant_id"})
        assert body_hash(body) == hashlib.sha256(legacy(body)).hexdigest()
    # Pinned: the digest of the first example as releases before orjson stored it.
    first = FeedbackIn.model_validate(FEEDBACK_EXAMPLES[0]).model_dump(mode="json", exclude={"event_id", "tenant_id"})
    assert body_hash(first) == PINNED


PINNED = "14cbcdcdaca9db355da1d180c676d996cb9ea2f0188622162bf8afc2e984c57e"
