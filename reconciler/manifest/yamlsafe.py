"""Hardened YAML reading that remembers where every value came from.

Manifests are hostile input until proven otherwise. This module composes YAML with libyaml
(fast, no object construction) and then builds plain Python values itself, so that:

- only the YAML core tags are accepted (map, seq, str, int, float, bool, null, timestamp);
  `!!python/object` and every other tag is an error, never a constructor call;
- alias expansion is budgeted (a "billion laughs" document fails at once, with bounded
  memory), recursive aliases and over-deep nesting are errors;
- duplicate keys are errors (PyYAML silently keeps the last one);
- booleans and integers follow YAML 1.2's core schema: `NO`, `on`, `yes` stay strings and
  `1:30` is not the number 90, so a country code or a time never changes type by surprise;
- every value's line and column, and every key's, is recorded by its path in the document.

Called by: reconciler.manifest.source (which handles files, sizes, encodings and jinja2).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.diagnostics import LocatedProblem

Path = tuple[str | int, ...]

MAX_NODES_PER_DOCUMENT = 200_000
MAX_DEPTH = 64

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}
_MAP_TAG = f"{_CORE}map"
_SEQ_TAG = f"{_CORE}seq"
_MERGE_TAG = f"{_CORE}merge"


class YamlProblem(LocatedProblem):
    """A problem in the YAML text itself, with the 1-based line and column where it is."""

    def __init__(
        self, code: str, message: str, line: int, column: int, hint: str = "", *, related_line: int = 0
    ) -> None:
        super().__init__(code, message, line, column, hint)
        self.related_line = related_line
        """A second line the message names (the first of two duplicate keys), 0 if none."""


class _CoreSchemaLoader(yaml.CSafeLoader):
    """libyaml parser with YAML 1.2 core-schema resolution for bool, int and float."""


def _install_core_schema() -> None:
    replaced = {f"{_CORE}bool", f"{_CORE}int", f"{_CORE}float"}
    resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in yaml.resolver.Resolver.yaml_implicit_resolvers.items():
        kept = [(tag, rx) for tag, rx in entries if tag not in replaced]
        if kept:
            resolvers[first] = kept
    _CoreSchemaLoader.yaml_implicit_resolvers = resolvers
    core = [
        (f"{_CORE}bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        (f"{_CORE}int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
        (
            f"{_CORE}float",
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            "-+0123456789.",
        ),
    ]
    for tag, pattern, first_chars in core:
        _CoreSchemaLoader.add_implicit_resolver(tag, re.compile(pattern), list(first_chars))


def _construct_core_int(loader: yaml.SafeLoader, node: ScalarNode) -> int:
    """YAML 1.2 integers: `012` is twelve, not octal ten."""
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


_install_core_schema()
_CoreSchemaLoader.add_constructor(f"{_CORE}int", _construct_core_int)


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


class _Builder:
    """Turns a composed node tree into plain values, with a budget and positions."""

    def __init__(self, loader: _CoreSchemaLoader, document: ParsedDocument) -> None:
        self._loader = loader
        self._doc = document
        self._nodes = 0
        self._active: set[int] = set()
        self._visited: set[int] = set()
        self._first_visits: list[int] = []
        """Positions of the ancestors being built for the first time (not via an alias)."""

    def build(self, node: Node, key: str, depth: int) -> Any:
        self._nodes += 1
        if self._nodes > MAX_NODES_PER_DOCUMENT:
            # Blame the innermost entry written out in the file whose aliases multiplied.
            line, column = _unpack(self._first_visits[-1]) if self._first_visits else _position(node)
            raise YamlProblem(
                "yaml.too-large",
                f"the document expands to more than {MAX_NODES_PER_DOCUMENT:,} values (an alias bomb?)",
                line,
                column,
                "write the values out, or split the document; anchors may not multiply content",
            )
        if depth > MAX_DEPTH:
            line, column = _position(node)
            raise YamlProblem("yaml.too-deep", f"nesting deeper than {MAX_DEPTH} levels", line, column)
        packed = _packed(node)
        self._doc.values[key] = packed
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        first_visit = id(node) not in self._visited
        if first_visit:
            self._visited.add(id(node))
            self._first_visits.append(packed)
        try:
            return self._collection(node, key, depth)
        finally:
            if first_visit:
                self._first_visits.pop()

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
                f"the tag '{_display_tag(str(node.tag))}' is not allowed in manifests",
                line,
                column,
                "remove the tag; manifests hold plain maps, lists, strings, numbers, booleans and dates",
            )

    def _scalar(self, node: ScalarNode) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self._check_tag(node, f"{_CORE}str")
        constructor = self._loader.yaml_constructors[node.tag]
        try:
            return constructor(self._loader, node)
        except (yaml.YAMLError, ValueError) as exc:
            line, column = _position(node)
            raise YamlProblem("yaml.value", f"cannot read the value '{node.value}': {exc}", line, column) from exc

    def _mapping(self, node: MappingNode, parent: str, depth: int) -> dict[str, Any]:
        self._check_tag(node, _MAP_TAG)
        if any(key.tag == _MERGE_TAG for key, _ in node.value):
            try:
                self._loader.flatten_mapping(node)
            except yaml.YAMLError as exc:
                line, column = _position(node)
                raise YamlProblem("yaml.merge", f"invalid merge key: {exc}", line, column) from exc
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
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
                    f"the key '{key}' appears twice in the same map (first on line {first_line})",
                    line,
                    column,
                    "keep one of them; YAML would silently use only the last",
                    related_line=first_line,
                )
            self._doc.keys[child] = _packed(key_node)
            result[key] = self.build(value_node, child, depth + 1)
        return result


def parse_documents(text: str) -> list[ParsedDocument]:
    """Parse every document in `text`. Raises YamlProblem at the first problem found.

    Empty documents (`---` with nothing after it, or comments only) are skipped.
    """
    loader = _CoreSchemaLoader(text)
    documents: list[ParsedDocument] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if isinstance(node, ScalarNode) and node.tag == f"{_CORE}null":
                continue
            document = ParsedDocument(data=None, line=node.start_mark.line + 1)
            document.data = _Builder(loader, document).build(node, "", 0)
            documents.append(document)
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
