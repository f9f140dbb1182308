"""Access control at the HTTP edge: `Authorization: Bearer npsk_...` on every endpoint but
/healthz, /readyz, /metrics and the docs; a signed session cookie for the dashboard.

- no key, a malformed header, a wrong or revoked key: 401 with `WWW-Authenticate: Bearer`;
- a valid key with the wrong role: 403;
- another tenant's or another store's resource: 404 (routes filter in SQL), so existence never leaks.
Keys never reach a log line: only their prefix does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..app import state_of
from .keys import Principal, Role
from .store import KeyStore

SESSION_COOKIE = "npsloop_session"


def _unauthorized(detail: str, error: str = "invalid_token") -> HTTPException:
    return HTTPException(
        status_code=401, detail=detail, headers={"WWW-Authenticate": f'Bearer realm="npsloop", error="{error}"'}
    )


def keys_of(request: Request) -> KeyStore:
    keys: KeyStore | None = state_of(request).keys
    if keys is None:
        raise RuntimeError("this app has no key store: access control is not configured")
    return keys


def bearer_token(header: str) -> str | None:
    """The key of an `Authorization: Bearer <key>` header; None when the header is malformed."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


async def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("An API key is required: send 'Authorization: Bearer npsk_...'.", "invalid_request")
    token = bearer_token(header)
    if token is None:
        raise _unauthorized("Malformed Authorization header: expected 'Bearer npsk_...'.", "invalid_request")
    principal = await keys_of(request).authenticate(token)
    if principal is None:
        raise _unauthorized("The API key is invalid or revoked.")
    request.state.principal = principal
    return principal


#: Only declares the scheme in the OpenAPI document (and so on each route that needs a key);
#: `authenticate` reads and checks the header.
BEARER = HTTPBearer(
    scheme_name="apiKey",
    description="An npsloop API key, `npsk_<prefix>_<secret>` (`npsloop keys create`).",
    auto_error=False,
)


def require(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller's principal, if its role is one of `roles` (else 403)."""
    allowed = ", ".join(str(r) for r in roles)

    async def dependency(
        request: Request, _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None
    ) -> Principal:
        principal = await authenticate(request)  # parses the header itself, for precise 401s
        if principal.role not in roles:
            raise HTTPException(403, f"A {principal.role} key may not do this; it needs a key with role {allowed}.")
        return principal

    return dependency


SOURCE_ROLES = (Role.SOURCE, Role.ADMIN)  # who may post feedback
SourceDep = Annotated[Principal, Depends(require(*SOURCE_ROLES))]
ReaderDep = Annotated[Principal, Depends(require(Role.MANAGER, Role.ADMIN))]
AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]


def same_tenant_or_404(principal: Principal, tenant_id: str | None) -> str:
    """The tenant a request is about: the key's. Naming another one finds nothing (404)."""
    if tenant_id is not None and tenant_id != principal.tenant_id:
        raise HTTPException(404, "Not found.")
    return principal.tenant_id


# -- the dashboard's session cookie ----------------------------------------------------------
def sign_session(secret: bytes, prefix: str, ttl_s: float, now: float | None = None) -> str:
    """`<payload>.<hmac>`: the key's prefix and an expiry, never the key itself."""
    payload = base64.urlsafe_b64encode(json.dumps({"p": prefix, "exp": (now or time.time()) + ttl_s}).encode())
    mac = hmac.new(secret, payload, hashlib.sha256).hexdigest()
    return f"{payload.decode()}.{mac}"


def read_session(secret: bytes, cookie: str, now: float | None = None) -> str | None:
    """The prefix in a session cookie that is well signed and not expired; None otherwise."""
    payload, _, mac = cookie.partition(".")
    expected = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
    if not mac or not hmac.compare_digest(mac, expected):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return None
    if not isinstance(data, dict) or float(data.get("exp", 0)) < (now or time.time()):
        return None
    prefix = data.get("p")
    return prefix if isinstance(prefix, str) else None
