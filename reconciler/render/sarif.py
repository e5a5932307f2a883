"""SARIF 2.1.0 output for GitHub code scanning (and any SARIF viewer).

Every registered rule is in the driver's rule table (so a rule that stops firing closes its
alerts); every finding and input error is a result located at the manifest line; a waived
finding is a result with an in-source suppression naming the waiver. Each result carries a
stable partial fingerprint (rule, resource, field), so moving a line does not reopen alerts.

Called by: the CLI (`recon validate --format sarif`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath
from typing import Any

from reconciler import __version__
from reconciler.diagnostics import Location
from reconciler.policy import RULES, Finding
from reconciler.render.report import ValidationReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INPUT_RULE_ID = "recon.input-error"


def _pascal(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.replace(".", "-").split("-"))


def _rules() -> list[dict[str, Any]]:
    table = [
        {
            "id": INPUT_RULE_ID,
            "name": "InputError",
            "shortDescription": {"text": "Manifest input is invalid"},
            "fullDescription": {"text": "A manifest, template or project file cannot be read or validated."},
            "help": {"text": "Fix the input as the message says; nothing was evaluated or changed."},
            "defaultConfiguration": {"level": "error"},
            "properties": {
                "tags": ["recon", "input"],
                "precision": "very-high",
                "problem.severity": "error",
            },
        }
    ]
    for rule in RULES.values():
        table.append(
            {
                "id": rule.id,
                "name": _pascal(rule.id),
                "shortDescription": {"text": rule.title},
                "fullDescription": {"text": f"{rule.title}. {rule.citation}".strip()},
                "help": {"text": rule.remediation, "markdown": f"**Fix:** {rule.remediation}"},
                "defaultConfiguration": {"level": str(rule.severity)},
                "properties": {
                    "tags": ["recon", "compliance", rule.pack],
                    "precision": "very-high",
                    "problem.severity": str(rule.severity),
                },
            }
        )
    return table


def _location(location: Location) -> dict[str, Any]:
    path = PurePosixPath(location.file)
    artifact: dict[str, Any] = (
        {"uri": path.as_uri()} if path.is_absolute() else {"uri": str(path), "uriBaseId": "%SRCROOT%"}
    )
    region: dict[str, Any] = {"startLine": max(location.line, 1)}
    if location.column > 0:
        region["startColumn"] = location.column
    return {"physicalLocation": {"artifactLocation": artifact, "region": region}}


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _finding_result(finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": index[finding.rule_id],
        "level": str(finding.severity),
        "message": {"text": f"{finding.resource}: {finding.message}. Fix: {finding.remediation}"},
        "locations": [_location(finding.location)],
        "partialFingerprints": {"reconFinding/v1": _fingerprint(finding.rule_id, finding.resource, finding.field)},
        "properties": {"resource": finding.resource, "field": finding.field},
    }


def render_sarif(report: ValidationReport) -> str:
    rules = _rules()
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results: list[dict[str, Any]] = []
    for d in report.diagnostics:
        text = f"{d.field}: {d.message}" if d.field else d.message
        if d.hint:
            text += f" (hint: {d.hint})"
        results.append(
            {
                "ruleId": INPUT_RULE_ID,
                "ruleIndex": 0,
                "level": "error",
                "message": {"text": text},
                "locations": [_location(d.location)],
                "partialFingerprints": {"reconFinding/v1": _fingerprint(d.code, d.location.file, d.field, d.message)},
                "properties": {"code": d.code},
            }
        )
    results.extend(_finding_result(f, index) for f in report.findings)
    for waived in report.waived:
        result = _finding_result(waived.finding, index)
        result["suppressions"] = [{"kind": "inSource", "justification": f"waived by {waived.waiver}"}]
        results.append(result)
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "recon",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": "recon/validate/"},
                "columnKind": "unicodeCodePoints",
                "invocations": [{"executionSuccessful": not report.diagnostics}],
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"
