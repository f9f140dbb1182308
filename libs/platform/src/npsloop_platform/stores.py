"""The store directory: each store's time zone, country (for public holidays), region and recipients.

Actions (SLAs in business hours), the notifier (quiet hours) and reporting (the Monday digest)
all need the same facts about a store, so they read one file: `NPSLOOP_STORES_FILE`, TOML:

    [defaults]                      # for stores not listed
    time_zone = "Europe/Berlin"
    country = "DE"

    [regions.north]
    name = "North"
    manager_email = "north@example.com"
    digest_recipients = ["north@example.com"]

    [stores."acme/berlin-1"]        # "<tenant>/<store_id>"
    name = "Berlin Mitte"
    region = "north"
    time_zone = "Europe/Berlin"
    country = "DE"
    subdivision = "BE"              # optional: a state or province, for its own holidays
    manager_email = "berlin-1@example.com"
    digest_recipients = ["berlin-1@example.com"]

A file that does not parse, an unknown time zone or a store naming an unknown region stops the
service at start, with the file and what is wrong.
"""

from __future__ import annotations

import tomllib
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class StoreConfigError(ValueError):
    """The store directory file is wrong; the message names the file and the entry."""


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Europe/Berlin')") from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    time_zone: str = "UTC"
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2, for public holidays.")

    _tz = field_validator("time_zone")(_zone)


class Region(_Strict):
    name: str | None = None
    manager_email: str | None = None
    digest_recipients: list[str] = Field(default_factory=list)


class Store(_Strict):
    tenant_id: str
    store_id: str
    name: str | None = None
    region: str | None = None
    time_zone: str = "UTC"
    country: str | None = None
    subdivision: str | None = None
    manager_email: str | None = None
    digest_recipients: list[str] = Field(default_factory=list)

    _tz = field_validator("time_zone")(_zone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class StoreDirectory(_Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    regions: dict[str, Region] = Field(default_factory=dict)
    stores: dict[str, Store] = Field(default_factory=dict, description='Keyed by "<tenant>/<store_id>".')

    @model_validator(mode="before")
    @classmethod
    def _fill_ids(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("stores"), dict):
            stores = {}
            for key, value in data["stores"].items():
                tenant, sep, store = str(key).partition("/")
                if not sep or not tenant or not store:
                    raise ValueError(f'store key {key!r} must be "<tenant>/<store_id>"')
                stores[key] = {"tenant_id": tenant, "store_id": store, **(value if isinstance(value, dict) else {})}
            data = {**data, "stores": stores}
        return data

    @model_validator(mode="after")
    def _regions_exist(self) -> StoreDirectory:
        for key, store in self.stores.items():
            if store.region is not None and store.region not in self.regions:
                raise ValueError(f"store {key!r} names region {store.region!r}, which [regions] does not define")
        return self

    def store(self, tenant_id: str, store_id: str | None) -> Store:
        """The store's entry, or one built from [defaults] for a store that is not listed."""
        if store_id is not None:
            found = self.stores.get(f"{tenant_id}/{store_id}")
            if found is not None:
                return found
        return Store(
            tenant_id=tenant_id,
            store_id=store_id or "",
            time_zone=self.defaults.time_zone,
            country=self.defaults.country,
        )

    def zone(self, tenant_id: str, store_id: str | None) -> ZoneInfo:
        return self.store(tenant_id, store_id).zone

    def region(self, name: str | None) -> Region | None:
        return self.regions.get(name) if name else None

    @cached_property
    def by_tenant(self) -> dict[str, list[Store]]:
        out: dict[str, list[Store]] = {}
        for store in self.stores.values():
            out.setdefault(store.tenant_id, []).append(store)
        return out


def load_stores(path: str | Path | None) -> StoreDirectory:
    """Read and validate the file; None gives an empty directory (every store on [defaults])."""
    if path is None or str(path) == "":
        return StoreDirectory()
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StoreConfigError(f"{file}: no such file (NPSLOOP_STORES_FILE)") from None
    except tomllib.TOMLDecodeError as exc:
        raise StoreConfigError(f"{file}: not valid TOML: {exc}") from None
    try:
        return StoreDirectory.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_input=False)
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in errors)
        raise StoreConfigError(f"{file}: {problems}") from None
