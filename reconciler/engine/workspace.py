"""The project a command works on: manifests loaded and checked, the rule packs' verdict,
the state backend, and the digest that binds a saved plan to exactly these manifests.

The project root is the folder of `recon.yaml` when one is found, else the first path
given (or its folder), else the current folder; the local state path is relative to it.

Called by: the CLI (plan, apply, show, drift, state, import, export, force-unlock).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import InputError, UsageError
from reconciler.manifest.loader import LoadResult, load_estate
from reconciler.manifest.model import Estate
from reconciler.manifest.project import SANDBOX, Project
from reconciler.policy import Evaluation, evaluate
from reconciler.state.backend import StateBackend
from reconciler.state.local import LocalBackend


@dataclass(slots=True)
class Workspace:
    root: Path
    project: Project
    project_file: str | None
    estate: Estate
    evaluation: Evaluation
    manifest_digest: str

    @property
    def target(self) -> str:
        target: str = self.project.target
        return target


def project_root(paths: Sequence[str], project_file: str | None) -> Path:
    if project_file:
        return Path(project_file).resolve().parent
    if paths:
        first = Path(paths[0])
        return (first if first.is_dir() else first.parent).resolve()
    return Path.cwd()


def manifest_digest(files: Sequence[str], project_file: str | None, variables: Mapping[str, Any]) -> str:
    """sha256 over every manifest file's name and bytes, the project file and the variables."""
    digest = hashlib.sha256()
    for name in sorted({*files, *([project_file] if project_file else [])}):
        digest.update(name.encode("utf-8") + b"\0")
        try:
            digest.update(Path(name).read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
        digest.update(b"\0")
    digest.update(json.dumps(variables, sort_keys=True, default=str).encode("utf-8"))
    return "sha256:" + digest.hexdigest()


def open_workspace(paths: Sequence[str], variables: Mapping[str, Any], *, today: dt.date) -> Workspace:
    """Load and check the manifests under `paths`; InputError lists every problem."""
    result: LoadResult = load_estate(list(paths) or ["."], variables)
    evaluation = evaluate(result.estate, today)
    if evaluation.diagnostics:
        raise InputError(evaluation.diagnostics, files=result.estate.files)
    return Workspace(
        root=project_root(paths, result.project_file),
        project=result.project or Project(),
        project_file=result.project_file,
        estate=result.estate,
        evaluation=evaluation,
        manifest_digest=manifest_digest(result.estate.files, result.project_file, variables),
    )


def state_backend(project: Project, root: Path) -> StateBackend:
    """The configured state backend."""
    config = project.state
    if config.backend == "local":
        return LocalBackend(root / config.path)
    raise UsageError(
        f"state backend '{config.backend}' is not available in this build of recon",
        next_step="use `state: {backend: local}` in recon.yaml",
    )


def describe_target(project: Project) -> str:
    return "the embedded sandbox" if project.target == SANDBOX else f"target '{project.target}'"
