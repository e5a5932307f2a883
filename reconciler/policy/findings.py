"""Findings and the rule registry.

A Rule has a stable id (`<pack>.<slug>`, e.g. `mifid2.retention-minimum`), a severity, a
one-line title, a remediation sentence and a check function. A check reads the estate
through an `EstateView` and yields Findings; it never performs I/O. Rules register
themselves with `register(Rule(...))` at import time; `RULES` is the single list the
evaluator, `recon rules`, SARIF's rule table and the docs conformance test walk.

Called by: reconciler.policy.packs.* (definitions), reconciler.policy.evaluate, render, CLI.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.diagnostics import Location

if TYPE_CHECKING:
    from reconciler.policy.view import EstateView


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule violated by one resource, pointing at the line to change."""

    rule_id: str
    severity: Severity
    resource: str
    message: str
    location: Location
    field: str
    remediation: str


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    pack: str
    severity: Severity
    title: str
    remediation: str
    check: Callable[[EstateView, Rule], Iterable[Finding]]
    citation: str = ""

    def finding(
        self,
        resource: str,
        message: str,
        location: Location,
        field: str,
        *,
        severity: Severity | None = None,
        remediation: str | None = None,
    ) -> Finding:
        return Finding(
            rule_id=self.id,
            severity=severity or self.severity,
            resource=resource,
            message=message,
            location=location,
            field=field,
            remediation=remediation or self.remediation,
        )


RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if rule.id in RULES:
        raise RuntimeError(f"rule {rule.id} registered twice")
    RULES[rule.id] = rule
    return rule
