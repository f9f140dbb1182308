"""API keys: `npsk_<prefix>_<secret>`. The prefix names the key in lists, logs and revocations; the
secret is shown once, at creation, and only its SHA-256 is stored.

The `npsk_` marker lets secret scanners (GitHub's, gitleaks, trufflehog) find a leaked key. A key is
32 random bytes, so a plain SHA-256 is enough to store it (no password stretching needed), and
lookups compare the digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

KEY_MARKER = "npsk_"
_KEY = re.compile(r"^npsk_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")


class Role(StrEnum):
    SOURCE = "source"  # posts feedback for its tenant (and stores)
    MANAGER = "manager"  # reads and works the cases and figures of its stores
    ADMIN = "admin"  # everything in its tenant, keys included


@dataclass(frozen=True)
class Principal:
    """Who is calling: one key, bound to one tenant, one role and optionally some stores."""

    prefix: str
    tenant_id: str
    role: Role
    stores: frozenset[str] | None = field(default=None)  # None: every store of the tenant

    def may_see_store(self, store_id: str | None) -> bool:
        return self.stores is None or (store_id is not None and store_id in self.stores)

    @property
    def actor(self) -> str:
        return f"key:{self.prefix}"


def generate_key() -> tuple[str, str]:
    """A new key and its prefix: (`npsk_ab12cd34_<43 chars>`, `ab12cd34`)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    prefix = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"{KEY_MARKER}{prefix}_{secrets.token_urlsafe(32)}", prefix


def split_key(key: str) -> str | None:
    """The prefix of a well-formed key, or None."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
