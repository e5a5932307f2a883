"""Run every registered rule over an estate and apply waivers.

`evaluate(estate, today)` is pure: no I/O, deterministic output order (file, line, rule).
Duplicate findings (the same rule on the same resource and field, reached through two
recording policies) are reported once.

Called by: the CLI (`recon validate`), later the plan engine, benchmarks and tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reconciler.diagnostics import Diagnostic
from reconciler.gcpause import paused_gc
from reconciler.manifest.model import Estate
from reconciler.policy.findings import RULES, Finding
from reconciler.policy.view import EstateView
from reconciler.policy.waivers import Waived, apply_waivers, check_waiver_rules


@dataclass(frozen=True, slots=True)
class Evaluation:
    findings: list[Finding]
    waived: list[Waived]
    diagnostics: list[Diagnostic]


def evaluate(estate: Estate, today: dt.date) -> Evaluation:
    """All findings of all rules on `estate`, with waivers applied as of `today`."""
    with paused_gc():
        return _evaluate(estate, today)


def _evaluate(estate: Estate, today: dt.date) -> Evaluation:
    diagnostics = check_waiver_rules(estate.of_kind("Waiver"))
    if diagnostics:
        return Evaluation([], [], diagnostics)
    view = EstateView.build(estate, today)
    seen: set[tuple[str, str, str]] = set()
    findings: list[Finding] = []
    for rule in RULES.values():
        for finding in rule.check(view, rule):
            key = (finding.rule_id, finding.resource, finding.field)
            if key not in seen:
                seen.add(key)
                findings.append(finding)
    active, waived = apply_waivers(view, findings)
    active.sort(key=lambda f: (f.location.file, f.location.line, f.location.column, f.rule_id))
    return Evaluation(active, waived, [])
