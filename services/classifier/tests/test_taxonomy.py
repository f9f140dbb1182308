from __future__ import annotations

from pathlib import Path

import pytest

from npsloop_classifier.config import ClassifierSettings
from npsloop_classifier.main import build
from npsloop_classifier.taxonomy import TaxonomyError, clauses, load_taxonomy
from npsloop_platform.bus.memory import MemoryBus

CONTRACT_IDS = [
    "staff", "waiting_time", "price", "product_quality", "availability",
    "delivery", "returns_refunds", "cleanliness", "checkout_payment", "app_website",
]  # fmt: skip


def test_default_taxonomy_has_the_contract_ids_in_order() -> None:
    assert load_taxonomy().ids == CONTRACT_IDS


def test_clauses_split_on_contrast_and_punctuation() -> None:
    assert clauses("friendly staff but the queue was endless") == ["friendly staff", "the queue was endless"]
    assert clauses("Clean store and the staff were lovely; although pricey") == [
        "Clean store", "the staff were lovely", "pricey",
    ]  # fmt: skip


def test_stems_and_phrases_match_on_word_boundaries() -> None:
    t = load_taxonomy()
    assert t.themes("They refunded me") == ["returns_refunds"]
    assert t.themes("It was out   of stock") == ["availability"]
    assert t.themes("happy") == []  # "app" inside a word is not the app


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        ("version = 1\n[themes.Staff]\nlabel='S'\nsynonyms=['staff']\n", "themes.Staff"),
        ("version = 1\n[themes.staff]\nlabel='S'\n", "at least one synonym or stem"),
        ("version = 1\n[themes.a]\nlabel='A'\nsynonyms=['x1']\n[themes.b]\nlabel='B'\nsynonyms=['X1']\n", "both"),
        ("version = 1\n[themes.a]\nlabel='A'\nsynonyms=['xy']\ncolour='red'\n", "colour"),
        ("version = 1\nthemes = [", "not TOML"),
    ],
)
def test_a_bad_taxonomy_is_refused_with_the_reason(tmp_path: Path, body: str, fault: str) -> None:
    path = tmp_path / "taxonomy.toml"
    path.write_text(body)
    with pytest.raises(TaxonomyError, match=fault) as info:
        load_taxonomy(path)
    assert str(path) in str(info.value)


def test_the_service_refuses_to_start_with_a_bad_file_and_takes_a_good_one(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="No such file"):
        build(ClassifierSettings(taxonomy_file=tmp_path / "missing.toml"), MemoryBus())
    good = tmp_path / "mine.toml"
    good.write_text("version = 1\n[themes.parking]\nlabel = 'Parking'\nsynonyms = ['car park', 'parking']\n")
    parts = build(ClassifierSettings(taxonomy_file=good), MemoryBus())
    assert parts.consumers
