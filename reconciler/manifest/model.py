"""The loaded, validated desired state: Resource (one manifest document) and Estate (all of
them, plus the project file and the dependency edges).

A Resource remembers where it came from so that any later layer (rules, plans) can point at
the exact line of any field with `resource.location("spec", "objectLock", "mode")`.

Called by: reconciler.manifest.loader (builder); policy, engine and CLI (readers).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from pydantic import BaseModel, Field, create_model

from reconciler.diagnostics import Location
from reconciler.manifest.kinds import API_VERSION, KINDS, Spec
from reconciler.manifest.kinds.base import Model
from reconciler.manifest.kinds.text import Address, LabelKey, Line, Name, Prose
from reconciler.manifest.yamlsafe import ParsedDocument


class Metadata(Model):
    name: Name
    """The resource's name, unique within its kind."""
    labels: dict[LabelKey, Line] = Field(default_factory=dict)
    """Free key/value labels (e.g. desk: energy)."""
    annotations: dict[LabelKey, Prose] = Field(default_factory=dict)
    """Free key/value notes for people and tools."""
    dependsOn: list[Address] = Field(default_factory=list)
    """Explicit ordering: these resources (Kind/name) are applied before this one."""
    renamedFrom: list[Name] = Field(default_factory=list)
    """Earlier names of this resource: recon renames the live object in place (where the
    platform can) instead of creating a new one, and moves its state record."""


@functools.cache
def document_model(kind: str) -> type[BaseModel]:
    """The full-document model of `kind`: apiVersion, kind, metadata and the kind's spec."""
    info = KINDS[kind]
    model: type[BaseModel] = create_model(
        f"{kind}Manifest",
        __base__=Model,
        __doc__=info.summary,
        apiVersion=(cast(Any, Literal[API_VERSION]), ...),
        kind=(cast(Any, Literal[kind]), ...),
        metadata=(Metadata, ...),
        spec=(info.spec_model, ...),
    )
    return model


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a resource was declared: the file and the positions of its parsed document."""

    file: str
    document: ParsedDocument = field(repr=False)


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str
    metadata: Metadata
    spec: Spec
    origin: Origin

    @property
    def name(self) -> str:
        name: str = self.metadata.name
        return name

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.metadata.name}"

    def location(self, *path: str | int) -> Location:
        """Where `path` (e.g. "spec", "retain") is written; the nearest ancestor if absent.

        A scalar points at its value; a map or list (or a missing field's parent) at its key,
        which is the line a reader looks for.
        """
        scalar = self.origin.document.is_collection(tuple(path)) is False
        line, column = self.origin.document.position(tuple(path), prefer_key=not scalar)
        return Location(self.origin.file, line, column)


@dataclass(slots=True)
class Estate:
    """Every resource, by address in declaration order, and dependency edges between them."""

    resources: dict[str, Resource]
    depends_on: dict[str, set[str]]
    files: list[str]

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.kind == kind]

    def get(self, kind: str, name: str) -> Resource | None:
        return self.resources.get(f"{kind}/{name}")
