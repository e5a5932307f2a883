"""recon: recording compliance as code for trading desks.

Compliance engineers declare, in YAML manifests, how voice interactions must be recorded,
retained, archived immutably, held for litigation and verified. `recon validate` checks the
manifests and the compliance rule packs; later commands plan and apply them to the estate.

Called by: the `recon` console script (`reconciler.cli:main`) and by tests.
"""

__version__ = "0.1.0"
