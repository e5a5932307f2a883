"""Waivers: silence one rule on one resource until a date, and report the waivers themselves.

A waiver that names an unknown rule is an input error (with the closest rule id). A waiver
past its `expires` date silences nothing and raises `recon.waiver-expired`; a live waiver
that silenced no finding raises `recon.waiver-unused` (it would hide the next real finding
on that resource). Both are warnings: they never fail a pipeline on their own, but the
finding an expired waiver no longer hides does.

Called by: reconciler.policy.evaluate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.diagnostics import Diagnostic
from reconciler.manifest.kinds.base import suggest
from reconciler.manifest.kinds.waiver import WaiverSpec
from reconciler.manifest.model import Resource
from reconciler.policy.findings import RULES, Finding, Rule, Severity, register
from reconciler.policy.view import EstateView


@dataclass(frozen=True, slots=True)
class Waived:
    finding: Finding
    waiver: str


def _spec(waiver: Resource) -> WaiverSpec:
    assert isinstance(waiver.spec, WaiverSpec)
    return waiver.spec


def check_waiver_rules(waivers: Iterable[Resource]) -> list[Diagnostic]:
    """An input error for every waiver whose rule id is not a registered rule."""
    problems = []
    for waiver in waivers:
        rule = _spec(waiver).rule
        if rule not in RULES:
            problems.append(
                Diagnostic(
                    "waiver.unknown-rule",
                    f"'{rule}' is not a rule id{suggest(rule, RULES)}",
                    waiver.location("spec", "rule"),
                    "spec.rule",
                    "list the rule ids with `recon rules`",
                    waiver.address,
                )
            )
        elif rule in (EXPIRED.id, UNUSED.id):
            problems.append(
                Diagnostic(
                    "waiver.self",
                    "a waiver cannot silence the waiver rules themselves",
                    waiver.location("spec", "rule"),
                    "spec.rule",
                    "renew or delete the waiver instead",
                    waiver.address,
                )
            )
    return problems


def apply_waivers(view: EstateView, findings: list[Finding]) -> tuple[list[Finding], list[Waived]]:
    """Split findings into (still active, waived), adding findings about the waivers."""
    live: dict[tuple[str, str], Resource] = {}
    reports: list[Finding] = []
    for waiver in view.estate.of_kind("Waiver"):
        spec = _spec(waiver)
        if spec.expires < view.today:
            reports.append(
                EXPIRED.finding(
                    waiver.address,
                    f"expired on {spec.expires}; {spec.rule} on {spec.target} is no longer silenced",
                    waiver.location("spec", "expires"),
                    "spec.expires",
                )
            )
        else:
            live.setdefault((spec.rule, spec.target), waiver)
    active: list[Finding] = []
    waived: list[Waived] = []
    used: set[str] = set()
    for finding in findings:
        silencer = live.get((finding.rule_id, finding.resource))
        if silencer is None:
            active.append(finding)
        else:
            waived.append(Waived(finding, silencer.address))
            used.add(silencer.address)
    for waiver in live.values():
        if waiver.address not in used:
            spec = _spec(waiver)
            reports.append(
                UNUSED.finding(
                    waiver.address,
                    f"silences nothing: {spec.rule} does not fire on {spec.target}",
                    waiver.location("spec", "rule"),
                    "spec.rule",
                )
            )
    return active + reports, waived


def _reported_by_apply(view: EstateView, rule: Rule) -> Iterable[Finding]:
    return ()


EXPIRED = register(
    Rule(
        "recon.waiver-expired",
        "recon",
        Severity.WARNING,
        "A waiver has expired",
        "renew the waiver with a new expires date and a fresh reason, or fix the finding and delete it",
        _reported_by_apply,
    )
)
UNUSED = register(
    Rule(
        "recon.waiver-unused",
        "recon",
        Severity.WARNING,
        "A waiver silences nothing",
        "delete the waiver; it would hide the next real finding on its target",
        _reported_by_apply,
    )
)
