"""The answers every npsloop endpoint can give, documented once for all of them in the OpenAPI document.

Routes document what is theirs (202, 409, 503...). What the platform adds around every route is
written here: the bearer key (401), the role (403), the scope (404), the body limit (413), encoded
bodies (415), validation (422). Each answer gets the error shape with an example, and every request
body its model's examples, so that a generated client, a fuzzer and a person reading /docs see the
same contract the server keeps.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "description": "What went wrong: a sentence, or for 422 one entry per field (`loc`, `msg`, `type`).",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
        }
    },
    "additionalProperties": True,
}

STANDARD: dict[str, tuple[str, Any]] = {
    "401": ("No API key, a malformed Authorization header, or a wrong, expired or revoked key.",
            {"detail": "Missing API key: send 'Authorization: Bearer npsk_...'."}),
    "403": ("The key is valid but its role, tenant or stores do not allow this.",
            {"detail": "A source key may not do this; it needs a key with role manager, admin."}),
    "404": ("Not found, or outside your key's tenant and stores (the two are not told apart).",
            {"detail": "Not found."}),
    "409": ("The request conflicts with the current state.",
            {"detail": "This event_id was used before for a different body."}),
    "413": ("The body is over the limit (NPSLOOP_MAX_BODY_BYTES; NPSLOOP_MAX_BATCH_BODY_BYTES for batches).",
            {"detail": "Request body over 1048576 bytes."}),
    "415": ("The body is encoded (Content-Encoding) or not JSON; send plain JSON.",
            {"detail": "Content-Encoding 'gzip' is not supported; send plain JSON."}),
    "422": ("The request is invalid: `detail` names each field (`loc`) with the reason (`msg`).",
            {"detail": [{"loc": ["body", "score"], "msg": "Input should be less than or equal to 10",
                         "type": "less_than_equal"}]}),
    "429": ("This key sent too much: wait `Retry-After` seconds (see the RateLimit-* headers).",
            {"detail": "Rate limit of this key exceeded; retry after 1 s."}),
    "503": ("A dependency (the broker, the database) did not answer; nothing was done. Retry after `Retry-After`.",
            {"detail": "The event broker is unavailable; nothing was accepted. Retry with the same event_id."}),
}  # fmt: skip


def _error(status: str, description: str | None = None) -> dict[str, Any]:
    default, example = STANDARD[status]
    return {
        "description": description or default,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": example}},
    }


def _request_examples(schema: dict[str, Any], op: dict[str, Any]) -> None:
    media = op.get("requestBody", {}).get("content", {}).get("application/json")
    if not media or "example" in media or "examples" in media:
        return
    body = media.get("schema", {})
    refs = [body.get("$ref", "")] + [alt.get("$ref", "") for alt in body.get("anyOf", [])]  # optional bodies
    models = schema.get("components", {}).get("schemas", {})
    for ref in filter(None, refs):
        model = models.get(ref.rsplit("/", 1)[-1], {})
        examples = model.get("examples") or _from_fields(model)
        if examples:
            media["examples"] = {f"example {i + 1}": {"value": v} for i, v in enumerate(examples)}
            return


def _from_fields(model: dict[str, Any]) -> list[Any]:
    """One example built from the fields' own examples (an enum's first value, a default), when that
    covers every required field; else none."""
    example: dict[str, Any] = {}
    for name, prop in model.get("properties", {}).items():
        if prop.get("examples"):
            example[name] = prop["examples"][0]
        elif "enum" in prop:
            example[name] = prop["enum"][0]
        elif name in model.get("required", []):
            return []
    return [example] if example else []


def document(app: FastAPI) -> None:
    """Replace app.openapi with one that documents the platform's answers on every route. A route
    that takes an API key says so itself (access.http.require declares the bearer scheme)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                responses = op.setdefault("responses", {})
                wanted = {"422"} if (op.get("parameters") or op.get("requestBody")) else set()
                if op.get("security"):
                    wanted |= {"401", "403", "404"}
                if op.get("requestBody"):
                    wanted |= {"413", "415"}
                for status in sorted(wanted - set(responses)):
                    responses[status] = _error(status)
                for status, answer in list(responses.items()):
                    if status in STANDARD and (status == "422" or "content" not in answer):
                        # 422: FastAPI's HTTPValidationError becomes ours, which says more.
                        described = answer.get("description")
                        responses[status] = _error(status, None if described == "Validation Error" else described)
                _request_examples(schema, op)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
