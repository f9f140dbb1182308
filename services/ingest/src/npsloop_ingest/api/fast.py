"""POST /v1/feedback without FastAPI's per-request machinery, for the posts it would accept as sent.

FastAPI's routing, dependency solving and body handling were over half of ingest's CPU for a
single post (the route matching, the header and security dependencies, the body field, a request
object per layer). This plain ASGI middleware runs innermost, after the body limit, the security
headers and the metrics, and takes the common case: JSON content type, a well-formed bearer key
of a source or admin, at most one Idempotency-Key of 1-255 characters, a body FeedbackIn accepts.
It parses and validates exactly as the route does (`loads_strict`, then FeedbackIn) and calls the
same `accept_one`.

Anything else is handed to FastAPI unchanged, with the body it read replayed: no key, a wrong
key or role, another content type, invalid JSON, a validation error. So every error answer (401,
403, 415, 422 and their bodies) is the route's own, and nothing about them is written twice. What
the fast path decided is never redone: it hands over before any side effect (rate limit, claim).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from npsloop_platform.access.http import SOURCE_ROLES, bearer_token
from npsloop_platform.http_edge import loads_strict, outage_response

from ..handlers import FeedbackIn
from .feedback import accept_one, router

PATH = "/v1/feedback"
_WATCHED = (b"content-type", b"authorization", b"idempotency-key")


class FeedbackFastPath:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._route: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _WATCHED:
                if name in found:  # a header sent twice: let the route decide which one counts
                    await self.app(scope, receive, send)
                    return
                found[name] = value
        principal = None
        key = found.get(b"idempotency-key")
        if found.get(b"content-type", b"").lower() == b"application/json" and (key is None or 0 < len(key) <= 255):
            try:
                principal = await self._principal(scope, found.get(b"authorization"))
            except Exception as exc:  # the key store's database is down: as the route answers it
                await self._outage(exc, scope, receive, send)
                return
        if principal is None:
            await self.app(scope, receive, send)
            return
        chunks, more, disconnected = [], True, False
        while more:
            message = await receive()
            if message["type"] != "http.request":
                disconnected = True
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body_bytes = b"".join(chunks)
        body = None
        if not disconnected:
            try:
                body = FeedbackIn.model_validate(loads_strict(body_bytes))
            except (ValueError, ValidationError, RecursionError):  # JSONDecodeError, UnicodeDecodeError: ValueErrors
                body = None
        if body is None:
            await self.app(scope, _replay(body_bytes, receive, disconnected), send)
            return
        scope["route"] = self._route_of(scope)  # the metrics' label, as the router would set it
        try:
            response = await accept_one(scope["app"], principal, body, None if key is None else key.decode("latin-1"))
        except Exception as exc:  # the route's exception handlers are not around this middleware
            await self._outage(exc, scope, receive, send)
            return
        await response(scope, receive, send)

    async def _outage(self, exc: Exception, scope: Any, receive: Any, send: Any) -> None:
        """The 503 the route's exception handler gives for an outage; anything else is raised (500)."""
        response = outage_response(exc)
        if response is None:
            raise exc
        await response(scope, receive, send)

    async def _principal(self, scope: Any, header: bytes | None) -> Any:
        """The principal of a well-formed bearer key with a role this route takes; else None."""
        token = None if header is None else bearer_token(header.decode("latin-1"))
        keys = scope["app"].state.npsloop.keys
        if token is None or keys is None:
            return None
        principal = await keys.authenticate(token)
        if principal is None or principal.role not in SOURCE_ROLES:
            return None
        return principal

    def _route_of(self, scope: Any) -> Any:
        if self._route is None:
            self._route = next(
                r for r in router.routes if getattr(r, "path", None) == PATH and "POST" in getattr(r, "methods", ())
            )
        return self._route


def _replay(body: bytes, receive: Any, disconnected: bool) -> Any:
    """A receive that gives the body already read, then what the client sends next."""
    sent = False

    async def replayed() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            if disconnected:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
