"""Diagnostics: one problem found in the user's input, located at file, line, column and field.

Every layer that reads user input (manifest loading, the project file, variables, waivers)
reports problems as `Diagnostic` values and keeps going, so that one run reports all of them
together. `reconciler.errors.InputError` carries the collected list to the CLI, which prints
them and exits 1. Rendering (text, JSON, SARIF) lives in `reconciler.render`.

Called by: reconciler.manifest (producer), reconciler.errors, reconciler.render (consumers).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a source file. Lines and columns count from 1; 0 means unknown."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        if self.column <= 0:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One input error.

    `code` is a stable machine-readable identifier (e.g. `yaml.duplicate-key`), `field` the
    dotted path inside the document (e.g. `spec.objectLock.mode`), `message` what is wrong
    and `hint` what to write instead.
    """

    code: str
    message: str
    location: Location
    field: str = ""
    hint: str = ""
    resource: str = ""

    def render(self) -> str:
        """One human line (plus the hint line): `file:line:col: error: field: message`."""
        where = f"{self.field}: " if self.field else ""
        text = f"{self.location}: error: {where}{self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class LocatedProblem(Exception):
    """A problem found while reading one file, before its documents exist (bad bytes, a
    template error, a YAML syntax error): what, where (1-based; 0 = unknown) and a hint."""

    def __init__(self, code: str, message: str, line: int = 0, column: int = 0, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line
        self.column = column
        self.hint = hint

    def diagnostic(self, file: str) -> Diagnostic:
        return Diagnostic(self.code, self.message, Location(file, self.line, self.column), hint=self.hint)


@dataclass(slots=True)
class DiagnosticList:
    """An accumulator that lets a whole run report all of its errors together."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diagnostic: Diagnostic) -> None:
        self.items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def sorted(self) -> list[Diagnostic]:
        """Stable order for output: by file, line, column, then code."""
        return sorted(
            self.items,
            key=lambda d: (d.location.file, d.location.line, d.location.column, d.code),
        )
