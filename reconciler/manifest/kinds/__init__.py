"""The manifest kinds. Importing this package registers every kind in `KINDS`.

Called by: reconciler.manifest.loader, reconciler.manifest.schema, the CLI and tests.
"""

from reconciler.manifest.kinds import archive, recording, runtime, settings, waiver
from reconciler.manifest.kinds.base import API_VERSION, KINDS, KindInfo, Reference, Spec

__all__ = [
    "API_VERSION",
    "KINDS",
    "KindInfo",
    "Reference",
    "Spec",
    "archive",
    "recording",
    "runtime",
    "settings",
    "waiver",
]
