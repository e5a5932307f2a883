"""Which providers a project's target uses.

`sandbox` (the default) is the embedded estate. Until the API-compatible sandbox servers
land, it is the package's fake providers over a file-backed store in
`<project>/.recon/sandbox/estate.json`, so separate `recon` runs see one estate and a
person can "change it by hand" to see drift. Named targets need the Genesys Cloud and AWS
providers; a build without them says so instead of pretending.

Called by: reconciler.cli.engine_commands and estate_commands.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import UsageError
from reconciler.manifest.project import SANDBOX, Project
from reconciler.providers.base import ProviderSet
from reconciler.testing import FakeStore, fake_providers

SANDBOX_ESTATE = Path(".recon") / "sandbox" / "estate.json"


def sandbox_estate_path(root: Path) -> Path:
    return root / SANDBOX_ESTATE


def providers_for(project: Project, root: Path) -> ProviderSet:
    """The providers of the project's target, ready to use (call `aclose()` when done)."""
    if project.target == SANDBOX:
        return fake_providers(FakeStore.open(sandbox_estate_path(root)))
    raise UsageError(
        f"target '{project.target}' needs the Genesys Cloud and AWS providers, which this build of recon does not include",
        next_step="set `target: sandbox` in recon.yaml to work against the embedded sandbox",
    )
