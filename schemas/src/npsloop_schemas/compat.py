"""Backward-compatibility check between a published JSON Schema and the current one.

Compatible: the current schema accepts every document the published one accepted, and old
consumers (which ignore unknown fields) can still read new documents. So: no new required
field, no removed or retyped field, no narrowed enum/const, no tightened bound or pattern.
"""

from __future__ import annotations

from typing import Any

_TIGHTER_IF_GREATER = ("minimum", "exclusiveMinimum", "minLength", "minItems")
_TIGHTER_IF_SMALLER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            return schema
        schema = root["$defs"][ref.split("/")[-1]]
    return schema


def _types(schema: dict[str, Any]) -> set[str] | None:
    t = schema.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else set(t)


def _variants(schema: dict[str, Any], root: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            out: list[dict[str, Any]] = []
            for sub in schema[key]:
                out.extend(_variants(sub, root))
            return out
    return [schema]


def breaking_changes(
    old: dict[str, Any],
    new: dict[str, Any],
    path: str = "$",
    old_root: dict[str, Any] | None = None,
    new_root: dict[str, Any] | None = None,
) -> list[str]:
    """Return a human-readable list of the incompatible differences (empty when compatible)."""
    old_root = old if old_root is None else old_root
    new_root = new if new_root is None else new_root
    old_vs, new_vs = _variants(old, old_root), _variants(new, new_root)
    problems: list[str] = []
    if len(old_vs) > 1 or len(new_vs) > 1:
        # Every old variant must still be accepted by some new variant.
        for ov in old_vs:
            if not any(not breaking_changes(ov, nv, path, old_root, new_root) for nv in new_vs):
                problems.append(f"{path}: a previously accepted variant {_describe(ov)} is no longer accepted")
        return problems
    o, n = old_vs[0], new_vs[0]
    ot, nt = _types(o), _types(n)
    widened = (nt or set()) | ({"integer"} if nt and "number" in nt else set())  # int -> number is fine
    if ot is not None and nt is not None and not ot <= widened:
        problems.append(f"{path}: type changed from {sorted(ot)} to {sorted(nt)}")
    if "const" in n and n.get("const") != o.get("const"):
        problems.append(f"{path}: const changed from {o.get('const')!r} to {n.get('const')!r}")
    if "enum" in n:
        old_values = set(map(repr, o.get("enum", [o["const"]] if "const" in o else [])))
        missing = old_values - set(map(repr, n["enum"]))
        if missing or ("enum" not in o and "const" not in o):
            problems.append(f"{path}: enum narrowed, no longer accepts {sorted(missing) or 'values it did'}")
    for key in _TIGHTER_IF_GREATER:
        if key in n and (key not in o or n[key] > o[key]):
            problems.append(f"{path}: {key} tightened from {o.get(key)} to {n[key]}")
    for key in _TIGHTER_IF_SMALLER:
        if key in n and (key not in o or n[key] < o[key]):
            problems.append(f"{path}: {key} tightened from {o.get(key)} to {n[key]}")
    if n.get("pattern") not in (None, o.get("pattern")):
        problems.append(f"{path}: pattern changed from {o.get('pattern')!r} to {n.get('pattern')!r}")
    if n.get("format") not in (None, o.get("format")):
        problems.append(f"{path}: format changed from {o.get('format')!r} to {n.get('format')!r}")
    if n.get("additionalProperties") is False and o.get("additionalProperties") is not False:
        problems.append(f"{path}: additionalProperties became false")
    old_props, new_props = o.get("properties", {}), n.get("properties", {})
    for name in sorted(set(n.get("required", [])) - set(o.get("required", []))):
        problems.append(f"{path}.{name}: newly required field")
    for name, sub in old_props.items():
        if name not in new_props:
            problems.append(f"{path}.{name}: field removed")
        else:
            problems.extend(breaking_changes(sub, new_props[name], f"{path}.{name}", old_root, new_root))
    if "items" in o and "items" in n:
        problems.extend(breaking_changes(o["items"], n["items"], f"{path}[]", old_root, new_root))
    return problems


def _describe(schema: dict[str, Any]) -> str:
    return str({k: schema[k] for k in ("type", "const", "enum", "format") if k in schema} or schema)
