"""Composing YAML node trees from libyaml's events, with every limit checked as it arrives.

libyaml's own composer (`CSafeLoader.get_node`) builds a whole document before anyone can
look at it: a 10 MiB flow list (`[a,a,a,...]`, five million nodes) took 44 s and 1.5 GB
before the value budget in reconciler.manifest.yamlsafe could refuse it, and a file of a
million tiny documents took 21 s and 700 MB. This composer reads libyaml's event stream
(C-speed scanning and parsing; composing in Python measured as fast as the Cython composer,
which calls back into Python for every node anyway) and refuses, at the event that crosses
the line:

- more than `max_documents` documents in the file (empty ones count);
- more than `max_nodes` nodes in one document;
- collections nested deeper than `max_depth` (libyaml's own limit is 1,000).

Texts of at most `SMALL_TEXT_CHARS` characters still go to libyaml's composer (15-30 %
faster, and every manifest of the benchmark estate is that small): a YAML node needs at
least one character of text (aliases share the node they name), so such a text cannot hold
more nodes than that, and only the document count needs checking as documents arrive.

This composer builds the same `yaml.nodes` trees libyaml's composer does (same tag resolution, anchors
registered before a collection's children so a recursive alias is seen by the builder,
duplicate and undefined anchors refused the same way), iteratively, so no document shape
can exhaust Python's recursion limit.

Called by: reconciler.manifest.yamlsafe.parse_documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.diagnostics import LocatedProblem

SMALL_TEXT_CHARS = 256 * 1024


class LimitExceeded(LocatedProblem):
    """The text holds more than the composer allows (documents, nodes or depth)."""


def _at(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


def compose_documents(
    loader: yaml.CSafeLoader, text_chars: int, *, max_documents: int, max_nodes: int, max_depth: int
) -> Iterator[Node | None]:
    """The root node of every document in the stream, in order (None for an empty one).

    Raises LimitExceeded, or the yaml.MarkedYAMLError libyaml raises for a syntax error.
    `text_chars` is the length of the text the loader reads."""
    if text_chars <= SMALL_TEXT_CHARS:
        yield from _small_text_documents(loader, max_documents)
        return
    get_event = loader.get_event
    documents = 0
    while True:
        event: Any = get_event()
        kind = event.__class__
        if kind is StreamEndEvent:
            return
        if kind is not DocumentStartEvent:
            continue  # the stream start
        documents += 1
        if documents > max_documents:
            raise _too_many_documents(max_documents, event.start_mark)
        yield _compose_document(loader, max_nodes, max_depth)


def _too_many_documents(max_documents: int, mark: Any) -> LimitExceeded:
    line, column = _at(mark)
    return LimitExceeded(
        "yaml.too-many-documents",
        f"the file holds more than {max_documents:,} documents",
        line,
        column,
        "split it into several files",
    )


def _small_text_documents(loader: yaml.CSafeLoader, max_documents: int) -> Iterator[Node | None]:
    """libyaml's composer, for a text too small to hold more nodes than the limits allow."""
    documents = 0
    while loader.check_node():
        node = loader.get_node()
        documents += 1
        if documents > max_documents:
            raise _too_many_documents(max_documents, node.start_mark if node is not None else None)
        yield node


def _compose_document(loader: yaml.CSafeLoader, max_nodes: int, max_depth: int) -> Node | None:
    """One document's tree. The loop is flat and keeps its state in local lists (it runs
    for every value of every manifest): `stack` holds the open collections, `pending` a
    mapping's key until its value arrives (None for sequences and between pairs)."""
    get_event = loader.get_event
    resolve: Any = loader.resolve
    anchors: dict[str, Node] = {}
    stack: list[Any] = []
    pending: list[Node | None] = []
    root: Node | None = None
    nodes = 0
    while True:
        event: Any = get_event()
        kind = event.__class__
        if kind is ScalarEvent:
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolve(ScalarNode, event.value, event.implicit)
            node: Node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        elif kind is AliasEvent:
            if event.anchor not in anchors:
                raise ComposerError(None, None, "found undefined alias", event.start_mark)
            node = anchors[event.anchor]
        elif kind is SequenceStartEvent or kind is MappingStartEvent:
            collection = SequenceNode if kind is SequenceStartEvent else MappingNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolve(collection, None, event.implicit)
            node = collection(tag, [], event.start_mark, None, event.flow_style)
            if len(stack) > max_depth:
                line, column = _at(event.start_mark)
                raise LimitExceeded("yaml.too-deep", f"nesting deeper than {max_depth} levels", line, column)
        elif kind is DocumentEndEvent:
            return root
        else:  # the end of the innermost sequence or mapping: attach it to its parent
            node = stack.pop()
            pending.pop()
            node.end_mark = event.end_mark
            kind = AliasEvent  # already counted and registered
        if kind is not AliasEvent:
            nodes += 1
            if nodes > max_nodes:
                line, column = _at(event.start_mark)
                raise LimitExceeded(
                    "yaml.too-large",
                    f"the document holds more than {max_nodes:,} values",
                    line,
                    column,
                    "split it into several documents or files",
                )
            anchor = event.anchor
            if anchor is not None:
                if anchor in anchors:
                    raise ComposerError(
                        "found duplicate anchor; first occurrence",
                        anchors[anchor].start_mark,
                        "second occurrence",
                        event.start_mark,
                    )
                anchors[anchor] = node
            if kind is not ScalarEvent:
                stack.append(node)
                pending.append(None)
                continue
        if not stack:
            root = node
        elif stack[-1].__class__ is SequenceNode:
            stack[-1].value.append(node)
        elif pending[-1] is None:
            pending[-1] = node
        else:
            stack[-1].value.append((pending[-1], node))
            pending[-1] = None
