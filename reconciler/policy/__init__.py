"""Compliance rule packs: mifid2, fca, cftc, sec17a4 (selected by RecordingPolicy.spec.regimes)
and the always-on `recon` pack; findings, waivers and the evaluator.

Importing the package registers every rule in `RULES`.

Called by: the CLI, the render layer and (later) the plan engine.
"""

from reconciler.policy.evaluate import Evaluation, evaluate
from reconciler.policy.findings import RULES, Finding, Rule, Severity
from reconciler.policy.packs import core, regimes
from reconciler.policy.waivers import Waived

__all__ = [
    "RULES",
    "Evaluation",
    "Finding",
    "Rule",
    "Severity",
    "Waived",
    "core",
    "evaluate",
    "regimes",
]
