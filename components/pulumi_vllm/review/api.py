"""The package's API as reviews see it: what changed between two component schemas, input by input.

A component's inputs and outputs are its API in every language at once (the SDKs are generated from
the schema), so an input added, removed, retyped or made required is worth a line in a review.
"""

from __future__ import annotations

from typing import Any


def _kind(prop: dict[str, Any]) -> str:
    """``string``, ``integer``, ``array<string>``, ``map<string>``, ``ServingEngineArgs``, ``any``."""
    if "$ref" in prop:
        ref = str(prop["$ref"])
        return "any" if ref.endswith("/Any") else ref.rsplit(":", 1)[-1]
    kind = str(prop.get("type", "any"))
    if kind == "array":
        return f"array<{_kind(prop.get('items') or {})}>"
    if kind == "object" and "additionalProperties" in prop:
        return f"map<{_kind(prop['additionalProperties'])}>"
    return kind


def _compare(where: str, before: dict[str, Any], after: dict[str, Any], required: tuple[set[str], set[str]]) -> list[str]:
    lines = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            lines.append(f"{where}.{key}: removed")
        elif key not in before:
            lines.append(f"{where}.{key}: added ({_kind(after[key])}{', required' if key in required[1] else ''})")
        else:
            old, new = _kind(before[key]), _kind(after[key])
            if old != new:
                lines.append(f"{where}.{key}: type {old} -> {new}")
            if (key in required[0]) != (key in required[1]):
                lines.append(f"{where}.{key}: {'now required' if key in required[1] else 'now optional'}")
    return lines


def api_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """One line per API change between two package schemas (``None``: no schema on that side)."""
    if before is None and after is None:
        return []
    if before is None or after is None:
        return ["the component package was " + ("added" if before is None else "removed")]
    lines: list[str] = []
    resources = (before.get("resources") or {}, after.get("resources") or {})
    for token in sorted(set(resources[0]) | set(resources[1])):
        name = token.rsplit(":", 1)[-1]
        if token not in resources[1]:
            lines.append(f"{name}: component removed")
            continue
        if token not in resources[0]:
            lines.append(f"{name}: component added")
            continue
        old, new = resources[0][token], resources[1][token]
        required = (set(old.get("requiredInputs") or []), set(new.get("requiredInputs") or []))
        lines += _compare(f"{name} input", old.get("inputProperties") or {}, new.get("inputProperties") or {}, required)
        lines += _compare(f"{name} output", old.get("properties") or {}, new.get("properties") or {}, (set(), set()))
    types = (before.get("types") or {}, after.get("types") or {})
    for token in sorted(set(types[0]) | set(types[1])):
        name = token.rsplit(":", 1)[-1]
        if token not in types[1]:
            lines.append(f"{name}: type removed")
        elif token not in types[0]:
            lines.append(f"{name}: type added")
        else:
            old, new = types[0][token], types[1][token]
            required = (set(old.get("required") or []), set(new.get("required") or []))
            lines += _compare(name, old.get("properties") or {}, new.get("properties") or {}, required)
    return lines
