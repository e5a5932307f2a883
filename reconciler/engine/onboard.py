"""Bringing an existing estate under recon: `import` binds one live object to a declared
resource in state; `export` writes manifests for everything the target has now.

The usual onboarding of an existing org: `recon export manifests/`, review and commit the
files, then `recon plan` — objects found by natural key are adopted (recorded in state on
apply) instead of created again. `recon import KIND/NAME ID` is for objects whose platform
name differs from the recon name.

Called by: the CLI (`recon import`, `recon export`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from reconciler.engine.diff import canonical
from reconciler.errors import ReconError, UsageError
from reconciler.manifest.kinds import API_VERSION
from reconciler.manifest.model import Estate
from reconciler.providers.base import Observed, ProviderSet, ResourceRef
from reconciler.redact import scrub
from reconciler.state.backend import StateSession
from reconciler.state.model import ResourceState, State


class ImportError_(ReconError):
    """`recon import` cannot bind the object (unknown address, missing object, already managed)."""


def parse_address(address: str, providers: ProviderSet) -> tuple[str, str]:
    kind, _, name = address.partition("/")
    if not kind or not name:
        raise UsageError(f"'{address}' is not an address; write KIND/NAME, e.g. Queue/energy-desk-gas")
    if providers.get(kind) is None:
        raise UsageError(
            f"kind '{kind}' is not managed on this target; managed kinds: {', '.join(sorted(providers.kinds()))}"
        )
    return kind, name


async def import_resource(
    session: StateSession, providers: ProviderSet, estate: Estate, address: str, object_id: str
) -> ResourceState:
    """Record the live object `object_id` as `address` in state. Changes nothing live."""
    kind, name = parse_address(address, providers)
    resource = estate.get(kind, name)
    if resource is None:
        raise ImportError_(
            f"{address} is not declared in the manifests",
            next_step=f"declare {address} first (`recon export DIR` drafts manifests from the live estate)",
        )
    recorded = session.state.resources.get(address)
    if recorded is not None and recorded.applied and recorded.pending is None:
        raise ImportError_(
            f"{address} is already managed (id {recorded.id})",
            next_step="`recon state show " + address + "` shows what recon recorded",
        )
    for other in session.state.resources.values():
        if other.kind == kind and other.id == object_id and other.address != address:
            raise ImportError_(
                f"{kind} id {object_id} is already managed as {other.address}",
                next_step=f"one platform object maps to one resource; `recon state show {other.address}`",
            )
    provider = providers.get(kind)
    assert provider is not None
    found = await provider.observe_all([ResourceRef(kind, name, object_id)])
    observed = found.get(address) or next(iter(found.values()), None)
    if observed is None or observed.id != object_id:
        raise ImportError_(
            f"no {kind} with id {object_id} exists on the target",
            next_step="check the id in the platform's console or API",
        )
    attributes = canonical(provider.normalise(observed.attributes), provider.schema)
    state = ResourceState(
        kind,
        name,
        observed.id,
        attributes,
        sorted(estate.depends_on.get(address, ())),
    )
    session.succeeded(state)
    return session.state.resources[address]


def _file_name(kind: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower() + ".yaml"


async def discover_all(providers: ProviderSet) -> dict[str, list[Observed]]:
    """Every live object of every kind whose attributes export as manifests (see
    `not_exportable` for the others)."""
    found: dict[str, list[Observed]] = {}
    for kind in sorted(providers.kinds()):
        provider = providers.get(kind)
        assert provider is not None
        if provider.schema.exportable:
            found[kind] = sorted(await provider.discover(), key=lambda o: o.name)
    return found


def named_as_managed(
    found: dict[str, list[Observed]], state: State, providers: ProviderSet
) -> dict[str, list[Observed]]:
    """`found` with every object recon already manages under the name state records for it
    (matched by kind and platform id), so an exported draft keeps the names other manifests
    refer to, and with the instructions the platform does not hold (the schema's
    `intent_paths`) as recon last applied them. Unmanaged objects keep the platform's
    name and view. Pure."""
    managed = {(r.kind, r.id): r for r in state.resources.values() if r.id is not None}

    def as_managed(kind: str, item: Observed) -> Observed:
        record = managed.get((kind, item.id))
        provider = providers.get(kind)
        if record is None or provider is None:
            return item
        attributes = copy.deepcopy(item.attributes)
        for path in provider.schema.intent_paths:
            _copy_path(record.attributes, attributes, path)
        return replace(item, name=record.name, attributes=attributes)

    return {
        kind: sorted((as_managed(kind, item) for item in objects), key=lambda o: o.name)
        for kind, objects in found.items()
    }


def _copy_path(source: Mapping[str, Any], target: dict[str, Any], path: tuple[str, ...]) -> None:
    """target[path] = source[path] when source has it and target has the parent map."""
    value: Any = source
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return
        value = value[key]
    parent: Any = target
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if isinstance(parent, dict):
        parent[path[-1]] = copy.deepcopy(value)


def not_exportable(providers: ProviderSet) -> list[str]:
    """Kinds whose provider cannot draft a valid manifest from what the platform holds."""
    return sorted(kind for kind in providers.kinds() if not providers.providers[kind].schema.exportable)


def export_documents(found: dict[str, list[Observed]], providers: ProviderSet, *, target: str) -> dict[str, str]:
    """File name → YAML text, one multi-document file per kind. Pure."""
    files: dict[str, str] = {}
    for kind, objects in found.items():
        if not objects:
            continue
        provider = providers.get(kind)
        assert provider is not None
        documents = [
            {
                "apiVersion": API_VERSION,
                "kind": kind,
                "metadata": {"name": item.name},
                "spec": canonical(provider.normalise(item.attributes), provider.schema),
            }
            for item in objects
        ]
        header = f"# Exported by `recon export` from target '{target}'. Review before committing.\n"
        body = yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True, default_flow_style=False)
        files[_file_name(kind)] = header + body
    return files


def write_export(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write the files; refuses (before writing anything) to overwrite existing ones."""
    targets = [directory / name for name in sorted(files)]
    existing = [str(path) for path in targets if path.exists()]
    if existing:
        raise UsageError(
            f"refusing to overwrite {', '.join(existing)}",
            next_step="export into an empty folder, or move the files away first",
        )
    directory.mkdir(parents=True, exist_ok=True)
    for path in targets:
        path.write_text(scrub(files[path.name]), encoding="utf-8")  # no secret a server echoed is exported
    return targets
