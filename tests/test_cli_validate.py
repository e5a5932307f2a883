"""End to end through the `recon` console script: the README's promises about validate,
schema, rules, render, exit codes and output formats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import AS_OF, EXAMPLES, REPO, Recon


@pytest.mark.parametrize("estate", ["energy-desk-eu", "fx-desk-us"])
def test_example_estates_validate_clean(recon: Recon, estate: str) -> None:
    result = recon("validate", str(EXAMPLES / estate), "--as-of", AS_OF)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 warning(s)" in result.stdout


def test_fx_waiver_expiry_turns_the_silenced_finding_into_an_error(recon: Recon) -> None:
    result = recon("validate", str(EXAMPLES / "fx-desk-us"), "--as-of", "2028-01-01", "--format", "json")
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert sorted(f["rule"] for f in report["findings"]) == ["recon.trader-uncovered", "recon.waiver-expired"]


def _broken_copy(tmp_path: Path) -> Path:
    estate = tmp_path / "estate"
    shutil.copytree(EXAMPLES / "energy-desk-eu", estate)
    retention = estate / "retention.yaml"
    retention.write_text(retention.read_text().replace("retain: 7y ", "retain: 3y "))
    return estate


def test_compliance_finding_exits_3_and_names_rule_file_line(recon: Recon, tmp_path: Path) -> None:
    estate = _broken_copy(tmp_path)
    result = recon("validate", "estate", "--as-of", AS_OF, cwd=tmp_path)
    assert result.returncode == 3
    assert "estate/retention.yaml:6:11: error[mifid2.retention-minimum] RetentionPolicy/mifid2-seven-years" in (
        result.stdout
    )
    assert "retention 3y is below the MiFID II minimum of 5y" in result.stdout
    assert (estate / "retention.yaml").read_text().count("3y") == 1  # validate changed nothing


def test_input_error_exits_1_and_skips_rules(recon: Recon, tmp_path: Path) -> None:
    estate = _broken_copy(tmp_path)
    archive = estate / "archive.yaml"
    archive.write_text(archive.read_text().replace("mode: COMPLIANCE", "mode: COMPLIANT"))
    result = recon("validate", "estate", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["status"] == "input-errors"
    assert report["findings"] == []
    (error,) = report["inputErrors"]
    assert (error["file"], error["line"], error["column"], error["field"]) == (
        "estate/archive.yaml",
        10,
        11,
        "spec.objectLock.mode",
    )
    assert "did you mean 'COMPLIANCE'" in error["message"]


def test_secret_never_printed_in_any_format(recon: Recon, tmp_path: Path) -> None:
    estate = _broken_copy(tmp_path)
    collectors = estate / "collectors.yaml"
    secret = "wba-token-9f8e7d6c5b4a"
    collectors.write_text(collectors.read_text().replace("env:TRADESENSE_TOKEN_A", secret))
    for fmt in ("text", "json", "sarif"):
        result = recon("validate", "estate", "--format", fmt, cwd=tmp_path)
        assert result.returncode == 1
        assert secret not in result.stdout + result.stderr
        assert "a literal secret is not allowed" in result.stdout


def test_sarif_written_to_file(recon: Recon, tmp_path: Path) -> None:
    _broken_copy(tmp_path)
    result = recon("validate", "estate", "--format", "sarif", "-o", "out.sarif", "--as-of", AS_OF, cwd=tmp_path)
    assert result.returncode == 3
    sarif = json.loads((tmp_path / "out.sarif").read_text())
    (finding,) = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "mifid2.retention-minimum"]
    location = finding["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "estate/retention.yaml"
    assert location["region"] == {"startLine": 6, "startColumn": 11}


def test_template_variables_from_var_and_var_file(recon: Recon, tmp_path: Path) -> None:
    (tmp_path / "q.yaml.j2").write_text(
        "apiVersion: recon/v1\nkind: Queue\nmetadata: {name: {{ desk }}-desk}\n"
        "spec: {regulated: false, region: {{ region }}, clientRegion: US}\n"
    )
    (tmp_path / "vars.yaml").write_text("desk: rates\nregion: us-east-1\n")
    ok = recon("validate", "q.yaml.j2", "--var-file", "vars.yaml", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    override = recon("validate", "q.yaml.j2", "--var-file", "vars.yaml", "--var", "region=us-east-9", cwd=tmp_path)
    assert override.returncode == 1
    assert "q.yaml.j2:4:" in override.stdout and "'us-east-9' is not a Genesys Cloud region" in override.stdout
    missing = recon("validate", "q.yaml.j2", cwd=tmp_path)
    assert missing.returncode == 1
    assert "q.yaml.j2:3: error: template variable: 'desk' is undefined" in missing.stdout


def test_bad_var_syntax_is_a_usage_error(recon: Recon, tmp_path: Path) -> None:
    result = recon("validate", str(EXAMPLES / "energy-desk-eu"), "--var", "no-equals-sign")
    assert result.returncode == 1
    assert "is not KEY=VALUE" in result.stderr


def test_render_prints_numbered_rendered_text(recon: Recon) -> None:
    result = recon("render", str(EXAMPLES / "energy-desk-eu"))
    assert result.returncode == 0
    assert "(rendered)" in result.stdout
    assert "name: energy-desk-carbon" in result.stdout


def test_schema_check_passes_on_the_repo_and_fails_when_stale(recon: Recon, tmp_path: Path) -> None:
    assert recon("schema", "--check", cwd=REPO).returncode == 0
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    stale = tmp_path / "schemas" / "Queue.schema.json"
    stale.write_text(stale.read_text().replace("clientRegion", "clientRegionOld"))
    result = recon("schema", "--check", cwd=tmp_path)
    assert result.returncode == 1
    assert "Queue.schema.json" in result.stderr and "run `recon schema`" in result.stderr
    assert recon("schema", cwd=tmp_path).returncode == 0
    assert recon("schema", "--check", cwd=tmp_path).returncode == 0


def test_rules_lists_every_rule_as_json(recon: Recon) -> None:
    result = recon("rules", "--format", "json")
    rules = json.loads(result.stdout)
    ids = {rule["id"] for rule in rules}
    assert {"mifid2.retention-minimum", "sec17a4.archive-object-lock", "recon.trader-uncovered"} <= ids
    assert all(rule["remediation"] for rule in rules)


def test_missing_path_is_an_input_error(recon: Recon) -> None:
    result = recon("validate", "does-not-exist")
    assert result.returncode == 1
    assert "does-not-exist: error: no such file or directory" in result.stdout
