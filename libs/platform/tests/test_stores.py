"""The store directory: one file for time zones, countries and regions, refused on start when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from npsloop_platform.stores import StoreConfigError, load_stores

GOOD = """
[defaults]
time_zone = "Europe/Berlin"
country = "DE"

[regions.north]
manager_email = "north@example.com"

[stores."acme/berlin-1"]
region = "north"
time_zone = "Europe/Berlin"
subdivision = "BE"

[stores."acme/nyc-1"]
time_zone = "America/New_York"
country = "US"
"""


def test_listed_and_default_stores(tmp_path: Path) -> None:
    f = tmp_path / "stores.toml"
    f.write_text(GOOD)
    d = load_stores(f)
    assert d.store("acme", "nyc-1").zone.key == "America/New_York"
    assert d.store("acme", "berlin-1").region == "north"
    assert d.region("north") is not None and d.region("north").manager_email == "north@example.com"  # type: ignore[union-attr]
    unknown = d.store("acme", "paris-9")
    assert (unknown.time_zone, unknown.country) == ("Europe/Berlin", "DE")
    assert d.store("other", "berlin-1").time_zone == "Europe/Berlin"  # tenants do not share stores
    assert [s.store_id for s in d.by_tenant["acme"]] == ["berlin-1", "nyc-1"]
    assert load_stores(None).store("acme", "x").time_zone == "UTC"


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ('[stores."acme/a"]\ntime_zone = "Mars/Olympus"', "unknown time zone 'Mars/Olympus'"),
        ('[stores."acme/a"]\nregion = "south"', "region 'south'"),
        ('[stores.a]\nname = "x"', '"<tenant>/<store_id>"'),
        ('[stores."acme/a"]\ntimezone = "UTC"', "timezone"),
        ("[stores\n", "not valid TOML"),
    ],
)
def test_bad_files_name_file_and_problem(tmp_path: Path, text: str, expect: str) -> None:
    f = tmp_path / "stores.toml"
    f.write_text(text)
    with pytest.raises(StoreConfigError) as err:
        load_stores(f)
    assert str(f) in str(err.value) and expect in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreConfigError, match="no such file"):
        load_stores(tmp_path / "nope.toml")
