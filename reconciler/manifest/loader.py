"""Load the desired state: discover, render, parse, validate, resolve. All errors at once.

`load_estate(paths, variables)` returns an Estate or raises InputError carrying every
Diagnostic found in the run (syntax, schema, secrets, duplicates, references, cycles), each
naming file, line, column and field. Nothing is written anywhere.

Bounded whatever the files hold: every template of the run is rendered in one renderer
child with CPU, memory and time limits (reconciler.manifest.render_worker), started before
the first file is parsed so it renders while the plain files are parsed; files are read by
reconciler.safefile (regular files, 10 MiB); at most MAX_MANIFEST_FILES files; the YAML
reader shares one yamlsafe.Budget across the files of the run.

Called by: the CLI (`recon validate`, later `plan`/`apply`), benchmarks and tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.diagnostics import Diagnostic, DiagnosticList, Location
from reconciler.errors import InputError
from reconciler.gcpause import paused_gc
from reconciler.manifest.explain import diagnostics_from, field_path
from reconciler.manifest.kinds import API_VERSION, KINDS
from reconciler.manifest.kinds.base import suggest
from reconciler.manifest.linemap import LineMap
from reconciler.manifest.model import Estate, Origin, Resource, document_model
from reconciler.manifest.project import Project, load_project
from reconciler.manifest.references import resolve
from reconciler.manifest.render_worker import RenderBatch, Rendered, TemplateJob
from reconciler.manifest.secrets_scan import find_secrets, may_contain_secrets
from reconciler.manifest.source import (
    Discovered,
    SourceProblem,
    discover,
    display_path,
    is_template,
    read_text,
)
from reconciler.manifest.yamlsafe import Budget, ParsedDocument, YamlProblem, parse_documents

MAX_MANIFEST_FILES = 20_000


@dataclass(slots=True)
class LoadResult:
    estate: Estate
    project: Project | None
    project_file: str | None


def load_estate(paths: Sequence[str | Path], variables: Mapping[str, Any] | None = None) -> LoadResult:
    """Load and check everything under `paths`. Raises InputError with all diagnostics.

    The cyclic garbage collector is paused while loading: a large estate allocates hundreds
    of thousands of small acyclic containers, and full collections over them (which free
    nothing) cost a third of the load time. Reference counting still frees everything.
    """
    with paused_gc():
        return _load_estate(paths, variables)


def _load_estate(paths: Sequence[str | Path], variables: Mapping[str, Any] | None) -> LoadResult:
    variables = dict(variables or {})
    problems = DiagnosticList()
    found = discover(paths)
    if len(found.manifests) > MAX_MANIFEST_FILES:
        problems.add(
            Diagnostic(
                "file.too-many",
                f"{len(found.manifests):,} manifest files; a run reads at most {MAX_MANIFEST_FILES:,}",
                Location(", ".join(str(p) for p in paths) or "."),
                hint="validate and plan the estate in parts (one folder at a time)",
            )
        )
        raise InputError(problems.sorted())
    templates = [TemplateJob(path=path) for path in found.manifests if is_template(path)]
    with RenderBatch(templates, variables, line_maps=True) as batch:
        return _load_files(paths, found, iter(batch), problems)


def _load_files(
    paths: Sequence[str | Path], found: Discovered, rendered: Iterator[Rendered], problems: DiagnosticList
) -> LoadResult:
    for missing in found.missing:
        problems.add(
            Diagnostic(
                "file.missing",
                "no such file or directory",
                Location(missing),
                hint="check the path",
            )
        )
    project: Project | None = None
    project_file: str | None = None
    if found.project_file is not None:
        project_file = display_path(found.project_file)
        project = load_project(found.project_file, project_file, problems)
    resources: dict[str, Resource] = {}
    declared_invalid: set[str] = set()
    unreadable: list[str] = []
    files: list[str] = []
    budget = Budget()
    for path in found.manifests:
        shown = display_path(path)
        files.append(shown)
        read = _read_documents(path, shown, next(rendered) if is_template(path) else None, budget, problems)
        if read is None:
            unreadable.append(shown)
            continue
        documents, suspicious = read
        for document in documents:
            resource = _to_resource(document, shown, problems, scan_secrets=suspicious)
            if resource is None:
                declared_invalid.add(_declared_address(document.data))
                continue
            previous = resources.get(resource.address)
            if previous is not None:
                problems.add(
                    Diagnostic(
                        "resource.duplicate",
                        f"{resource.address} is declared twice (first at {previous.location('metadata', 'name')})",
                        resource.location("metadata", "name"),
                        "metadata.name",
                        "rename one of them or delete the copy",
                        resource.address,
                    )
                )
                continue
            resources[resource.address] = resource
    if not found.manifests and not found.missing:
        problems.add(
            Diagnostic(
                "file.none",
                "no manifest files (*.yaml, *.yml, *.yaml.j2) found",
                Location(", ".join(str(p) for p in paths) or "."),
                hint="pass the folder that holds your manifests",
            )
        )
    # What an unreadable file declares is unknown, so "does not exist" would be a guess there.
    edges, reference_problems = resolve(resources, declared_invalid, report_dangling=not unreadable)
    problems.extend(reference_problems)
    if problems:
        raise InputError(problems.sorted(), files=files, references_checked=not unreadable)
    return LoadResult(Estate(resources, edges, files), project, project_file)


def _declared_address(data: Any) -> str:
    """'Kind/name' of a document that failed validation, when it says both."""
    if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
        return f"{data.get('kind')}/{data['metadata'].get('name')}"
    return ""


def _read_documents(
    path: Path, shown: str, rendered: Rendered | None, budget: Budget, problems: DiagnosticList
) -> tuple[list[ParsedDocument], bool] | None:
    """The file's documents and whether its text may hold a secret (one regex pass over the
    text, so the per-value scan runs only where it can find something), or None (with a
    diagnostic) when the file cannot be read at all.

    For templates, every line and column is mapped back from the rendered text to the
    template line that produced it, so errors and findings point at the file people edit.
    """
    line_map: LineMap | None = None
    try:
        if rendered is None:
            text = read_text(path)
        elif rendered.problem is not None:
            raise rendered.problem
        else:
            text, line_map = rendered.text, rendered.line_map
    except SourceProblem as exc:
        problems.add(exc.diagnostic(shown))
        return None
    try:
        documents = parse_documents(text, budget)
    except YamlProblem as exc:
        line, column, hint, message = exc.line, exc.column, exc.hint, exc.message
        if line_map is not None:
            hint = (hint + "; " if hint else "") + f"the rendered text is shown by `recon render {shown}`"
            line, column = line_map.map(line, column)
            if exc.related_line:
                mapped = line_map.map(exc.related_line, 0)[0]
                message = message.replace(f"line {exc.related_line})", f"line {mapped})")
        problems.add(Diagnostic(exc.code, message, Location(shown, line, column), field_path(exc.path), hint))
        return None
    if line_map is not None:
        for document in documents:
            document.remap_lines(line_map.map)
    return documents, may_contain_secrets(text)


def _to_resource(
    document: ParsedDocument, file: str, problems: DiagnosticList, *, scan_secrets: bool
) -> Resource | None:
    data = document.data

    def at(path: tuple[str | int, ...], code: str, message: str, hint: str = "", *, key: bool = False) -> None:
        line, column = document.position(path, prefer_key=key)
        problems.add(Diagnostic(code, message, Location(file, line, column), field_path(path), hint))

    if not isinstance(data, dict):
        at(
            (),
            "manifest.shape",
            "a manifest document must be a map",
            "write apiVersion, kind, metadata and spec keys",
        )
        return None
    secrets = dict(find_secrets(data)) if scan_secrets else {}
    for path, what in secrets.items():
        at(
            path,
            "secret.literal",
            f"this looks like {what}; manifests must not contain secrets",
            "store it in a secret manager and write env:NAME or file:PATH where a secret is expected",
        )
    api_version = data.get("apiVersion")
    if api_version != API_VERSION:
        message = "required field 'apiVersion' is missing" if api_version is None else "unsupported apiVersion"
        at(
            ("apiVersion",),
            "manifest.api-version",
            message,
            f"write apiVersion: {API_VERSION}",
            key=api_version is None,
        )
        return None
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        message = (
            "required field 'kind' is missing"
            if kind is None
            else f"unknown kind{suggest(kind, KINDS) if isinstance(kind, str) else ''}"
        )
        at(("kind",), "manifest.kind", message, f"kinds are: {', '.join(KINDS)}", key=kind is None)
        return None
    model = document_model(kind)
    name = data.get("metadata", {}).get("name") if isinstance(data.get("metadata"), dict) else None
    address = f"{kind}/{name}" if isinstance(name, str) else kind
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        # A secret already reported by the scan is not reported again as a schema error.
        reported = {field_path(path) for path in secrets}
        problems.extend(
            d for d in diagnostics_from(exc, model, document, file, resource=address) if d.field not in reported
        )
        return None
    document.data = None  # validated: keep only the compact positions
    origin = Origin(file=file, document=document)
    return Resource(kind=kind, metadata=parsed.metadata, spec=parsed.spec, origin=origin)  # type: ignore[attr-defined]
