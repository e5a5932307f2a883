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

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from deepdiff import DeepDiff
from deepdiff.helper import NotPresent

from reconciler.manifest.secrets_scan import redact
from reconciler.providers.base import AttributeChange, AttributePath, Attributes, AttributeSchema, path_under


@dataclass(slots=True)
class _Node:
    """One step of a schema's path patterns: what holds at this path, and below."""

    children: dict[str, _Node] = field(default_factory=dict)
    ignored: bool = False
    is_set: bool = False

    def child(self, key: str | int) -> _Node | None:
        exact = self.children.get(str(key))
        wildcard = self.children.get("*")
        if exact is None or wildcard is None:
            return exact or wildcard
        return _merge(exact, wildcard)


def _merge(first: _Node, second: _Node) -> _Node:
    merged = _Node(dict(first.children), first.ignored or second.ignored, first.is_set or second.is_set)
    for key, node in second.children.items():
        merged.children[key] = _merge(merged.children[key], node) if key in merged.children else node
    return merged


@functools.lru_cache(maxsize=256)
def _compile(schema: AttributeSchema) -> _Node | None:
    """The schema's ignored and set patterns as a trie; None when it has none."""
    if not schema.ignored_paths and not schema.set_paths:
        return None
    root = _Node()
    for patterns, flag in ((schema.ignored_paths, "ignored"), (schema.set_paths, "is_set")):
        for pattern in patterns:
            node = root
            for part in pattern:
                node = node.children.setdefault(part, _Node())
            setattr(node, flag, True)
    return root


def canonical(attributes: Attributes, schema: AttributeSchema) -> Attributes:
    """`attributes` in canonical form (a new object; the input is not modified)."""
    value = _canonical(attributes, _compile(schema))
    assert isinstance(value, dict)
    return value


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _plain(value: Any) -> Any:
    """Canonical form where no pattern applies: only null-valued keys are dropped."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _canonical(value: Any, node: _Node | None) -> Any:
    if node is None:
        return _plain(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            below = node.child(key)
            if item is None or (below is not None and below.ignored):
                continue
            out[key] = _canonical(item, below)
        return out
    if isinstance(value, list):
        items = [_canonical(item, node.child("*")) for item in value]
        if node.is_set:
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
        try:
            document = document[part]
        except (KeyError, IndexError, TypeError):
            return None
    return document


def _present(value: Any) -> Any:
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
                found[path] = AttributeChange(path, _present(level.t1), _present(level.t2))
    return tuple(found[key] for key in sorted(found, key=lambda p: tuple(str(part) for part in p)))


def redacted(value: Any) -> Any:
    """`value` with every string that looks like a secret replaced by "<redacted>".

    Applied to what providers report from the live platform before it enters a plan or a
    drift report: manifests cannot hold secrets (the loader refuses them), but a platform
    can, when someone pasted a token into a field by hand."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(key)): redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redacted(item) for item in value]
    return value


def redacted_changes(found: tuple[AttributeChange, ...], *, live_side: str) -> tuple[AttributeChange, ...]:
    """`found` with the live side ("before" or "after") of every change redacted."""
    if live_side == "before":
        return tuple(AttributeChange(c.path, redacted(c.before), c.after) for c in found)
    return tuple(AttributeChange(c.path, c.before, redacted(c.after)) for c in found)


def touches(attribute_changes: tuple[AttributeChange, ...], patterns: frozenset[tuple[str, ...]]) -> bool:
    """True when any change lies at or below one of `patterns` (e.g. replace paths)."""
    return bool(patterns) and any(path_under(change.path, patterns) for change in attribute_changes)
