"""Attribute diffs without noise: canonicalise both sides with the provider's schema, then let
deepdiff find what changed, reported as one AttributeChange per path.

Canonical form (pure, deterministic):
- attributes under an `ignored_paths` pattern are removed (platform-owned ids, dates);
- keys whose value is null are removed: "unset" and "absent" are the same to a platform;
- lists under a `set_paths` pattern are sorted by their canonical JSON and de-duplicated,
  so reordering members on the platform is never a change (the perpetual diffs
  terraform-provider-genesyscloud users complain about);
- a changed set is reported once, at the set's path, with the whole before and after sets,
  rather than as shifted indices.

Equal canonical forms short-circuit before deepdiff, so a plan of an unchanged estate costs
one dict comparison per resource.

Called by: engine.planner (desired vs live), engine.drift (applied vs live, applied vs desired).
"""

from __future__ import annotations

import json
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import NotPresent

from reconciler.providers.base import AttributeChange, AttributePath, Attributes, AttributeSchema, path_under


def canonical(attributes: Attributes, schema: AttributeSchema) -> Attributes:
    """`attributes` in canonical form (a new object; the input is not modified)."""
    value = _canonical(attributes, (), schema)
    assert isinstance(value, dict)
    return value


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _canonical(value: Any, path: AttributePath, schema: AttributeSchema) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            child = (*path, key)
            if item is None or (schema.ignored_paths and path_under(child, schema.ignored_paths)):
                continue
            out[key] = _canonical(item, child, schema)
        return out
    if isinstance(value, list):
        items = [_canonical(item, (*path, "*"), schema) for item in value]
        if schema.set_paths and path_under(path, schema.set_paths):
            unique = {_sort_key(item): item for item in items}
            return [unique[key] for key in sorted(unique)]
        return items
    return value


def _set_root(path: AttributePath, schema: AttributeSchema) -> AttributePath | None:
    """The shortest prefix of `path` that is a set, if any."""
    for length in range(1, len(path) + 1):
        prefix = path[:length]
        if path_under(prefix, schema.set_paths) and any(len(p) == length for p in schema.set_paths):
            return prefix
    return None


def _lookup(document: Any, path: AttributePath) -> Any:
    for part in path:
        if (isinstance(document, dict) and isinstance(part, str) and part in document) or (
            isinstance(document, list) and isinstance(part, int) and 0 <= part < len(document)
        ):
            document = document[part]
        else:
            return None
    return document


def _plain(value: Any) -> Any:
    return None if isinstance(value, NotPresent) else value


def changes(
    before: Attributes | None, after: Attributes | None, schema: AttributeSchema
) -> tuple[AttributeChange, ...]:
    """Every changed attribute between two canonical attribute maps, sorted by path.

    Both arguments must already be canonical (see `canonical`). None means absent: every
    leaf of the other side is reported as added or removed at the top level keys.
    """
    if before == after:
        return ()
    if before is None or after is None:
        present = after if before is None else before
        assert present is not None
        return tuple(
            AttributeChange((key,), None if before is None else value, value if before is None else None)
            for key, value in sorted(present.items())
        )
    found: dict[AttributePath, AttributeChange] = {}
    tree = DeepDiff(before, after, view="tree", threshold_to_diff_deeper=0)
    for report in tree.values():
        for level in report:
            path: AttributePath = tuple(level.path(output_format="list"))
            root = _set_root(path, schema) if schema.set_paths else None
            if root is not None:
                found[root] = AttributeChange(root, _lookup(before, root), _lookup(after, root))
                continue
            if path not in found:
                found[path] = AttributeChange(path, _plain(level.t1), _plain(level.t2))
    return tuple(found[key] for key in sorted(found, key=lambda p: tuple(str(part) for part in p)))


def touches(attribute_changes: tuple[AttributeChange, ...], patterns: frozenset[tuple[str, ...]]) -> bool:
    """True when any change lies at or below one of `patterns` (e.g. replace paths)."""
    return bool(patterns) and any(path_under(change.path, patterns) for change in attribute_changes)
