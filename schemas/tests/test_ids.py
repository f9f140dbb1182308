"""Lineage ids are uuid5 in the LINEAGE namespace: ids already stored keep matching."""

from __future__ import annotations

import random
import uuid

from npsloop_schemas.ids import LINEAGE, derive_id


def test_derive_id_is_uuid5_in_the_lineage_namespace() -> None:
    rng = random.Random(5)
    kinds = ["feedback.classified", "case", "delivery", "notification.status", "ü-kind", ""]
    for _ in range(20_000):
        source = uuid.UUID(int=rng.getrandbits(128))
        kind = rng.choice(kinds)
        derived = derive_id(kind, source)
        assert derived == uuid.uuid5(LINEAGE, f"{kind}:{source}")
        assert derived.version == 5 and derived.variant == uuid.RFC_4122


def test_a_known_lineage_id_never_changes() -> None:
    source = uuid.UUID("00000000-0000-0000-0000-000000000001")
    # what every release so far stored for it: a change here orphans every stored case and delivery
    assert str(derive_id("feedback.classified", source)) == "e75e4975-be83-5aa1-a812-aaf5cd343ef0"
