"""Where an S3 state backend finds S3: resolved from the project's target, for the engine's
`state_backend(project, root, s3=...)` (the engine may not look at the CLI or the sandbox).

- `state: {backend: local}` (the default): None — nothing to resolve, no sandbox started.
- target `sandbox`: the embedded sandbox's moto S3 (started on demand, like the providers),
  with its test credentials. Its buckets live in the daemon's memory, so the state bucket
  is created (versioned) on first use and is gone after `recon sandbox down`: that state
  is as disposable as the sandbox.
- a named target with an `aws:` block: its endpointUrl, region and profile; credentials
  from that profile or boto3's default chain (AWS_ACCESS_KEY_ID..., instance role). The
  bucket must exist with versioning on: recon names it and says what to run when not.
- a named target without one: None, boto3's default chain for everything.

Called by: reconciler.cli.engine_commands and estate_commands (every state_backend call).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from reconciler.cli.targets import sandbox_dir
from reconciler.errors import UsageError
from reconciler.manifest.project import SANDBOX, Project
from reconciler.sandbox.process import ensure_running
from reconciler.state.s3 import S3Settings


def s3_settings(project: Project, root: Path) -> S3Settings | None:
    """How to reach S3 for the project's state (see the module docstring)."""
    if project.state.backend != "s3":
        return None
    if project.target == SANDBOX:
        services = ensure_running(sandbox_dir(root)).services
        entry = services.get("s3")
        url = entry.get("url") if isinstance(entry, Mapping) else None
        if not isinstance(entry, Mapping) or not isinstance(url, str):
            reason = entry.get("reason") if isinstance(entry, Mapping) else None
            raise UsageError(
                f"the sandbox has no S3 service for the s3 state backend ({reason or 'not started'})",
                next_step="install moto[server] and run `recon sandbox down` then `recon sandbox up`, "
                "or use `state: {backend: local}` with the sandbox",
            )
        return S3Settings(
            endpoint_url=url,
            region=_text(entry.get("region")),
            access_key_id=_text(entry.get("accessKeyId")),
            secret_access_key=_text(entry.get("secretAccessKey")),
            create_bucket=True,
        )
    target = project.targets.get(project.target)
    aws = target.aws if target is not None else None
    if aws is None:
        return None
    return S3Settings(endpoint_url=aws.endpointUrl, region=aws.region, profile=aws.profile)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
