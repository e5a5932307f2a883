"""SARIF output loads as SARIF 2.1.0 and carries what GitHub code scanning needs: a rule
table with every rule, a ruleId/ruleIndex per result, a relative artifact URI with a
startLine, a stable partial fingerprint, and suppressions for waived findings."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES
from sarif_pydantic import Sarif

from reconciler.manifest.loader import load_estate
from reconciler.policy import RULES, evaluate
from reconciler.render.report import ValidationReport
from reconciler.render.sarif import INPUT_RULE_ID, render_sarif

AS_OF = dt.date(2026, 11, 21)


def _report(paths: list[str], as_of: dt.date = AS_OF) -> ValidationReport:
    result = load_estate(paths)
    evaluation = evaluate(result.estate, as_of)
    return ValidationReport(
        as_of, result.estate.files, len(result.estate.resources), [], evaluation.findings, evaluation.waived
    )


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(EXAMPLES / "energy-desk-eu", tmp_path / "estate")
    archive = tmp_path / "estate" / "archive.yaml"
    archive.write_text(archive.read_text().replace("publicAccess: blocked", "publicAccess: allowed"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "estate"


def test_sarif_loads_as_sarif_2_1_0_with_every_rule(broken: Path) -> None:
    document = json.loads(render_sarif(_report(["estate"])))
    log = Sarif.model_validate(document)
    assert log.version == "2.1.0"
    (run,) = document["runs"]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert rule_ids[0] == INPUT_RULE_ID
    assert set(rule_ids[1:]) == set(RULES)
    assert all(rule["shortDescription"]["text"] and rule["help"]["text"] for rule in run["tool"]["driver"]["rules"])


def test_every_result_is_locatable_by_github(broken: Path) -> None:
    run = json.loads(render_sarif(_report(["estate"])))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert run["results"], "the broken estate must produce results"
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        physical = result["locations"][0]["physicalLocation"]
        assert not physical["artifactLocation"]["uri"].startswith("/")
        assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert physical["region"]["startLine"] >= 1
        assert len(result["partialFingerprints"]["reconFinding/v1"]) == 32
    (public,) = [r for r in run["results"] if r["ruleId"] == "mifid2.archive-public-access"]
    assert public["locations"][0]["physicalLocation"]["region"]["startLine"] == 14


def test_fingerprint_survives_a_moved_line(broken: Path) -> None:
    first = json.loads(render_sarif(_report(["estate"])))["runs"][0]["results"]
    archive = broken / "archive.yaml"
    archive.write_text("# a new comment line moves everything down\n" + archive.read_text())
    second = json.loads(render_sarif(_report(["estate"])))["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in first] == [r["partialFingerprints"] for r in second]
    assert first[0]["locations"] != second[0]["locations"]


def test_waived_finding_is_a_suppressed_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(EXAMPLES.parent.parent)
    run = json.loads(render_sarif(_report(["manifests/examples/fx-desk-us"])))["runs"][0]
    (waived,) = run["results"]
    assert waived["ruleId"] == "recon.trader-uncovered"
    assert waived["suppressions"][0]["kind"] == "inSource"
    assert "Waiver/" in waived["suppressions"][0]["justification"]
    assert waived["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("queues.yaml.j2")
