"""Access control: API keys bound to a tenant, a role and optionally stores; enforced on every
endpoint but health, readiness, metrics and docs."""

from pathlib import Path

from .keys import Principal, Role, generate_key, key_hash, split_key
from .models import SCHEMA
from .store import KeyStore

MIGRATIONS = Path(__file__).parent / "migrations"

__all__ = ["MIGRATIONS", "SCHEMA", "KeyStore", "Principal", "Role", "generate_key", "key_hash", "split_key"]
