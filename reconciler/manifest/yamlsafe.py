"""Hardened YAML reading that remembers where every value came from.

Manifests are hostile input until proven otherwise. This module composes YAML with libyaml
(fast, no object construction) and then builds plain Python values itself, so that:

- only the YAML core tags are accepted (map, seq, str, int, float, bool, null, timestamp);
  `!!python/object` and every other tag is an error, never a constructor call;
- everything is bounded before it is built: the composer (ours, over libyaml's events, so
  it can stop at once) refuses more than MAX_DOCUMENTS_PER_FILE documents, more than
  MAX_NODES_PER_DOCUMENT values in a document and nesting deeper than MAX_DEPTH; alias and
  merge-key expansion is budgeted too (a "billion laughs" document fails at once, with
  bounded memory), recursive aliases are errors; a `Budget` shared by every file of one load
  bounds the values, and the characters of their recorded positions, that a load keeps;
- integers are limited to 64 bits and floats must be finite (`1e400` is not infinity), so
  a 400-digit number is an error here, with its line, and never reaches arithmetic;
- duplicate keys are errors (PyYAML silently keeps the last one);
- booleans and integers follow YAML 1.2's core schema: `NO`, `on`, `yes` stay strings and
  `1:30` is not the number 90, so a country code or a time never changes type by surprise;
- every value's line and column, and every key's, is recorded by its path in the document.

Called by: reconciler.manifest.loader (manifests, with one Budget per load),
reconciler.manifest.project and reconciler.manifest.variables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.diagnostics import LocatedProblem
from reconciler.manifest.yamlcompose import LimitExceeded, compose_documents
from reconciler.manifest.yamlcore import CORE as _CORE
from reconciler.manifest.yamlcore import CoreSchemaLoader as _CoreSchemaLoader
from reconciler.manifest.yamlcore import OutOfRange as _OutOfRange

Path = tuple[str | int, ...]

MAX_NODES_PER_DOCUMENT = 200_000
MAX_DOCUMENTS_PER_FILE = 10_000
MAX_DEPTH = 64
MAX_VALUES_PER_LOAD = 2_000_000
"""About 70,000 resources; the 10,000-resource benchmark estate holds about 300,000."""
MAX_POSITION_CHARS_PER_LOAD = 64 * 1024 * 1024
"""The characters of every recorded path (long keys nested deep multiply them)."""

_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}
_MAP_TAG = f"{_CORE}map"
_STR_TAG = f"{_CORE}str"
_SEQ_TAG = f"{_CORE}seq"
_MERGE_TAG = f"{_CORE}merge"


class YamlProblem(LocatedProblem):
    """A problem in the YAML text itself, with the 1-based line and column where it is."""

    def __init__(
        self,
        code: str,
        message: str,
        line: int,
        column: int,
        hint: str = "",
        *,
        related_line: int = 0,
        path: Path = (),
    ) -> None:
        super().__init__(code, message, line, column, hint)
        self.related_line = related_line
        """A second line the message names (the first of two duplicate keys), 0 if none."""
        self.path = path
        """Where in the document the problem value is, when known (a number out of range)."""


@dataclass(slots=True)
class Budget:
    """What one load may still keep, shared by every file it reads: values (aliases
    expanded) and the characters of their recorded paths. `parse_documents` without one
    gets a fresh budget of its own."""

    values: int = MAX_VALUES_PER_LOAD
    chars: int = MAX_POSITION_CHARS_PER_LOAD


def _display_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


_SEP = "\x1f"
_COLUMN_BITS = 20


def path_key(path: Path) -> str:
    """A flat string key for a path: ('spec', 'items', 0) -> '\x1fspec\x1fitems\x1f#0'.

    Positions are stored under string keys and packed ints because neither is tracked by
    the cyclic garbage collector: a 10,000-resource estate has ~250k values, and tuples for
    each (path, line, column) made collection a third of the load time.
    """
    return "".join(_SEP + (f"#{part}" if isinstance(part, int) else part) for part in path)


def key_path(key: str) -> Path:
    """The path a `path_key` stands for: '\x1fspec\x1fitems\x1f#0' -> ('spec', 'items', 0)."""
    return tuple(int(part[1:]) if part[:1] == "#" and part[1:].isdecimal() else part for part in key.split(_SEP)[1:])


def _pack(line: int, column: int, collection: bool) -> int:
    return (line << (_COLUMN_BITS + 1)) | (min(column, (1 << _COLUMN_BITS) - 1) << 1) | int(collection)


def _unpack(packed: int) -> tuple[int, int]:
    return packed >> (_COLUMN_BITS + 1), (packed >> 1) & ((1 << _COLUMN_BITS) - 1)


@dataclass(slots=True)
class ParsedDocument:
    """One YAML document: its value and where each path's value (and key) starts.

    `data` is the plain value; the loader releases it (sets None) once the document has been
    validated into a resource, keeping only the compact position maps.
    """

    data: Any
    line: int
    values: dict[str, int] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)

    def position(self, path: Path, *, prefer_key: bool = False) -> tuple[int, int]:
        """Line and column of `path`, or of its nearest ancestor that exists."""
        probe = path_key(path)
        while True:
            if prefer_key and probe in self.keys:
                return _unpack(self.keys[probe])
            if probe in self.values:
                return _unpack(self.values[probe])
            if not probe:
                return (self.line, 1)
            probe = probe.rpartition(_SEP)[0]

    def is_collection(self, path: Path) -> bool | None:
        """True for a map or list at `path`, False for a scalar, None when absent."""
        packed = self.values.get(path_key(path))
        return None if packed is None else bool(packed & 1)

    def remap_lines(self, remap: Callable[[int, int], tuple[int, int]]) -> None:
        """Rewrite every position through `remap(line, column)` (templates -> template lines)."""
        self.line = remap(self.line, 1)[0]
        for positions in (self.values, self.keys):
            for key, packed in positions.items():
                line, column = remap(*_unpack(packed))
                positions[key] = _pack(line, column, bool(packed & 1))


def _position(node: Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


_MAX_COLUMN = (1 << _COLUMN_BITS) - 1


def _packed(node: Node) -> int:
    """_pack() of a node's start, inlined: it runs for every key and value of every manifest."""
    mark = node.start_mark
    column = mark.column + 1
    column = min(column, _MAX_COLUMN)
    return ((mark.line + 1) << (_COLUMN_BITS + 1)) | (column << 1) | (node.__class__ is not ScalarNode)


def _shown(text: str, limit: int = 60) -> str:
    """`text` for a message: a key or value may be megabytes long."""
    return text if len(text) <= limit else f"{text[:limit]}..."


class _Builder:
    """Turns a composed node tree into plain values, with a budget and positions."""

    def __init__(self, loader: _CoreSchemaLoader, document: ParsedDocument, budget: Budget) -> None:
        self._loader = loader
        self._doc = document
        self._budget = budget
        self._nodes = 0
        self._node_limit = min(MAX_NODES_PER_DOCUMENT, budget.values)
        self._chars = 0
        self._char_limit = budget.chars
        self._active: set[int] = set()
        self._visited: set[int] = set()
        self._first_visits: list[int] = []
        """Positions of the ancestors being built for the first time (not via an alias)."""
        self._flattened: dict[int, list[tuple[Node, Node]]] = {}

    def finish(self) -> None:
        """Charge what this document keeps to the load's budget."""
        self._budget.values -= self._nodes
        self._budget.chars -= self._chars

    def _too_large(self, node: Node) -> YamlProblem:
        # Blame the innermost entry written out in the file whose aliases multiplied.
        line, column = _unpack(self._first_visits[-1]) if self._first_visits else _position(node)
        if self._node_limit < MAX_NODES_PER_DOCUMENT:
            return YamlProblem(
                "yaml.budget",
                f"the files of this run hold more than {MAX_VALUES_PER_LOAD:,} values in all",
                line,
                column,
                "validate and plan the estate in parts (one folder at a time)",
            )
        return YamlProblem(
            "yaml.too-large",
            f"the document expands to more than {MAX_NODES_PER_DOCUMENT:,} values (an alias bomb?)",
            line,
            column,
            "write the values out, or split the document; anchors may not multiply content",
        )

    def build(self, node: Node, key: str, depth: int) -> Any:
        self._nodes += 1
        self._chars += len(key)
        if self._nodes > self._node_limit or self._chars > self._char_limit:
            self._over_budget(node)
        if depth > MAX_DEPTH:
            line, column = _position(node)
            raise YamlProblem("yaml.too-deep", f"nesting deeper than {MAX_DEPTH} levels", line, column)
        packed = _packed(node)
        self._doc.values[key] = packed
        if node.__class__ is ScalarNode:
            return self._scalar(node, key)
        first_visit = id(node) not in self._visited
        if first_visit:
            self._visited.add(id(node))
            self._first_visits.append(packed)
        try:
            return self._collection(node, key, depth)
        finally:
            if first_visit:
                self._first_visits.pop()

    def _over_budget(self, node: Node) -> None:
        if self._nodes > self._node_limit:
            raise self._too_large(node)
        if self._chars > self._char_limit:
            line, column = _position(node)
            raise YamlProblem(
                "yaml.budget",
                f"the keys are too long for their nesting: the paths of the values exceed "
                f"{MAX_POSITION_CHARS_PER_LOAD:,} characters in all",
                line,
                column,
                "use short keys; a long text belongs in a value",
            )

    def _collection(self, node: Node, key: str, depth: int) -> Any:
        marker = id(node)
        if marker in self._active:
            line, column = _position(node)
            raise YamlProblem("yaml.recursive-alias", "an alias refers to its own ancestor", line, column)
        self._active.add(marker)
        try:
            if isinstance(node, SequenceNode):
                self._check_tag(node, _SEQ_TAG)
                return [self.build(item, f"{key}{_SEP}#{i}", depth + 1) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, key, depth)
        finally:
            self._active.discard(marker)
        line, column = _position(node)
        raise YamlProblem("yaml.unsupported", "unsupported YAML node", line, column)

    def _check_tag(self, node: Node, expected: str) -> None:
        if node.tag != expected:
            line, column = _position(node)
            raise YamlProblem(
                "yaml.tag",
                f"the tag '{_shown(_display_tag(str(node.tag)))}' is not allowed in manifests",
                line,
                column,
                "remove the tag; manifests hold plain maps, lists, strings, numbers, booleans and dates",
            )

    def _scalar(self, node: ScalarNode, key: str) -> Any:
        if node.tag == _STR_TAG:  # most values: what SafeConstructor's str constructor returns
            return node.value
        if node.tag not in _SCALAR_TAGS:
            if node.tag == _MERGE_TAG:  # `<<` merges only as a key; as a value it is text
                return str(node.value)
            self._check_tag(node, f"{_CORE}str")
        constructor = self._loader.yaml_constructors[node.tag]
        try:
            return constructor(self._loader, node)
        except _OutOfRange as exc:
            line, column = _position(node)
            raise YamlProblem(
                "yaml.number-range",
                f"cannot read the number: {exc}",
                line,
                column,
                "quote it if it is a text",
                path=key_path(key),
            ) from None
        except (yaml.YAMLError, ValueError) as exc:
            line, column = _position(node)
            raise YamlProblem(
                "yaml.value", f"cannot read the value '{_shown(str(node.value))}': {exc}", line, column
            ) from None

    def _merged_pairs(self, node: MappingNode, depth: int) -> list[tuple[Node, Node]]:
        """The pairs of `node` with its merge keys (`<<: *base`, `<<: [*a, *b]`) expanded as
        PyYAML does (merged pairs first, a list's later maps before its earlier ones), but
        bounded: by the document's value budget, by MAX_DEPTH for merges of merges, and a
        map that merges itself is an error, not a RecursionError."""
        cached = self._flattened.get(id(node))
        if cached is not None:
            return cached
        if depth > MAX_DEPTH or (id(node) in self._active and depth):
            line, column = _position(node)
            raise YamlProblem("yaml.merge", "merge keys (<<) merge the map into itself, or nest too deep", line, column)
        self._active.add(id(node))
        merged: list[tuple[Node, Node]] = []
        own: list[tuple[Node, Node]] = []
        try:
            for key_node, value_node in node.value:
                if key_node.tag != _MERGE_TAG:
                    own.append((key_node, value_node))
                    continue
                if isinstance(value_node, MappingNode):
                    sources = [value_node]
                elif isinstance(value_node, SequenceNode) and all(
                    isinstance(item, MappingNode) for item in value_node.value
                ):
                    sources = list(reversed(value_node.value))
                else:
                    line, column = _position(value_node)
                    raise YamlProblem("yaml.merge", "a merge key (<<) takes a map or a list of maps", line, column)
                for source in sources:
                    self._check_tag(source, _MAP_TAG)
                    merged.extend(self._merged_pairs(source, depth + 1))
                    if 2 * len(merged) > self._node_limit - self._nodes:
                        raise self._too_large(source)
        finally:
            if depth:
                self._active.discard(id(node))
        pairs = merged + own
        self._flattened[id(node)] = pairs
        return pairs

    def _mapping(self, node: MappingNode, parent: str, depth: int) -> dict[str, Any]:
        self._check_tag(node, _MAP_TAG)
        pairs = node.value
        if any(key.tag == _MERGE_TAG for key, _ in pairs):
            pairs = self._merged_pairs(node, 0)
        result: dict[str, Any] = {}
        for key_node, value_node in pairs:
            if not isinstance(key_node, ScalarNode):
                line, column = _position(key_node)
                raise YamlProblem("yaml.key", "a key must be a plain string", line, column, "quote the key")
            key = str(key_node.value)
            child = f"{parent}{_SEP}{key}"
            if key in result:
                line, column = _position(key_node)
                first_line = _unpack(self._doc.keys[child])[0]
                raise YamlProblem(
                    "yaml.duplicate-key",
                    f"the key '{_shown(key)}' appears twice in the same map (first on line {first_line})",
                    line,
                    column,
                    "keep one of them; YAML would silently use only the last",
                    related_line=first_line,
                )
            self._doc.keys[child] = _packed(key_node)
            result[key] = self.build(value_node, child, depth + 1)
        return result


def parse_documents(text: str, budget: Budget | None = None) -> list[ParsedDocument]:
    """Parse every document in `text`. Raises YamlProblem at the first problem found.

    Empty documents (`---` with nothing after it, or comments only) are skipped. `budget`
    is the load's (shared by its files); without one the text gets a fresh budget.
    """
    budget = budget if budget is not None else Budget()
    loader = _CoreSchemaLoader(text)
    documents: list[ParsedDocument] = []
    try:
        for node in compose_documents(
            loader,
            len(text),
            max_documents=MAX_DOCUMENTS_PER_FILE,
            max_nodes=min(MAX_NODES_PER_DOCUMENT, budget.values),
            max_depth=MAX_DEPTH,
        ):
            if node is None or (isinstance(node, ScalarNode) and node.tag == f"{_CORE}null"):
                continue
            document = ParsedDocument(data=None, line=node.start_mark.line + 1)
            builder = _Builder(loader, document, budget)
            document.data = builder.build(node, "", 0)
            builder.finish()
            documents.append(document)
    except LimitExceeded as exc:
        if exc.code == "yaml.too-large" and budget.values < MAX_NODES_PER_DOCUMENT:
            raise YamlProblem(
                "yaml.budget",
                f"the files of this run hold more than {MAX_VALUES_PER_LOAD:,} values in all",
                exc.line,
                exc.column,
                "validate and plan the estate in parts (one folder at a time)",
            ) from None
        raise YamlProblem(exc.code, exc.message, exc.line, exc.column, exc.hint) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in str(exc.problem):
            # "while scanning a quoted scalar ... found unexpected end of stream": the
            # useful place is where the unterminated thing started, not the end of the file.
            mark = exc.context_mark
        line = mark.line + 1 if mark else 0
        column = mark.column + 1 if mark else 0
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.problem} {exc.context}"
        lines = text.splitlines()
        if 0 < line <= len(lines) and "\t" in lines[line - 1][: max(column, 1)]:
            raise YamlProblem(
                "yaml.syntax", f"YAML syntax: {problem}", line, column, "YAML indents with spaces; replace the tab"
            ) from exc
        raise YamlProblem("yaml.syntax", f"YAML syntax: {problem}", line, column) from exc
    except yaml.YAMLError as exc:
        raise YamlProblem("yaml.syntax", f"YAML syntax: {exc}", 0, 0) from exc
    finally:
        loader.dispose()
    return documents
