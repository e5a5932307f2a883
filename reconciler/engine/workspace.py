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
from reconciler.state.s3 import S3Backend, S3Settings


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


def _relative(name: str, root: Path) -> str:
    path = Path(name).resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def manifest_digest(files: Sequence[str], project_file: str | None, variables: Mapping[str, Any], root: Path) -> str:
    """sha256 over every manifest file's name (relative to the project root, so the same
    checkout gives the same digest from any folder or machine) and bytes, the project file
    and the variables."""
    digest = hashlib.sha256()
    named = {_relative(name, root): name for name in {*files, *([project_file] if project_file else [])}}
    for relative in sorted(named):
        digest.update(relative.encode("utf-8") + b"\0")
        try:
            digest.update(Path(named[relative]).read_bytes())
        except OSError:
            digest.update(b"<unreadable>")
        digest.update(b"\0")
    digest.update(json.dumps(variables, sort_keys=True, default=str).encode("utf-8"))
    return "sha256:" + digest.hexdigest()


def sources_relative_to(paths: Sequence[str], root: Path) -> list[str]:
    """The manifest paths given to `recon plan`, relative to the project root, for the plan file."""
    return [_relative(path, root) for path in (paths or ["."])] or ["."]


def sources_from(plan_sources: Sequence[str], root: Path) -> list[str]:
    """A saved plan's manifest paths, resolved against the project root at apply."""
    return [str(root / source) if not Path(source).is_absolute() else source for source in plan_sources] or [str(root)]


def open_workspace(paths: Sequence[str], variables: Mapping[str, Any], *, today: dt.date) -> Workspace:
    """Load and check the manifests under `paths`; InputError lists every problem."""
    result: LoadResult = load_estate(list(paths) or ["."], variables)
    evaluation = evaluate(result.estate, today)
    if evaluation.diagnostics:
        raise InputError(evaluation.diagnostics, files=result.estate.files)
    root = project_root(paths, result.project_file)
    return Workspace(
        root=root,
        project=result.project or Project(),
        project_file=result.project_file,
        estate=result.estate,
        evaluation=evaluation,
        manifest_digest=manifest_digest(result.estate.files, result.project_file, variables, root),
    )


def state_backend(project: Project, root: Path, *, s3: S3Settings | None = None) -> StateBackend:
    """The configured state backend. For `backend: s3`, `s3` says how to reach S3 (the CLI
    resolves it from the target: reconciler.cli.state_settings); None is boto3's default
    chain (environment, profile, instance role)."""
    config = project.state
    if config.backend == "local":
        return LocalBackend(root / config.path)
    if config.backend == "s3" and config.bucket and config.key:
        return S3Backend.from_settings(config.bucket, config.key, s3 or S3Settings(), region=config.region)
    raise UsageError(
        f"state backend '{config.backend}' is not available in this build of recon",
        next_step="use `state: {backend: local}` or `state: {backend: s3, bucket: ..., key: ...}` in recon.yaml",
    )


def describe_target(project: Project) -> str:
    return "the embedded sandbox" if project.target == SANDBOX else f"target '{project.target}'"
