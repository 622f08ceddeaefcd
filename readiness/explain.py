"""Failure messages a DBA can act on: what was expected, what was found, the difference."""

from __future__ import annotations

from collections.abc import Mapping, Set


def differences(what: str, expected: Mapping | Set, found: Mapping | Set) -> str:  # type: ignore[type-arg]
    """'columns of t: missing a; unexpected b; differs c: expected X, found Y'."""
    parts = []
    if isinstance(expected, Mapping) and isinstance(found, Mapping):
        missing = [f"{key} {expected[key]}" for key in expected if key not in found]
        extra = [f"{key} {found[key]}" for key in found if key not in expected]
        changed = [
            f"{key}: expected {expected[key]}, found {found[key]}"
            for key in expected
            if key in found and expected[key] != found[key]
        ]
    else:
        missing = sorted(map(str, set(expected) - set(found)))
        extra = sorted(map(str, set(found) - set(expected)))
        changed = []
    if missing:
        parts.append("missing " + "; ".join(missing))
    if extra:
        parts.append("unexpected " + "; ".join(extra))
    if changed:
        parts.append("differs " + "; ".join(changed))
    return f"{what}: " + (" | ".join(parts) or "no difference")
