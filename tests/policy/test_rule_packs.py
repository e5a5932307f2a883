"""Every registered rule fires on a minimal non-compliant estate, at the line to change,
and stays silent on its compliant twin (tests/fixtures/compliant/estate.yaml).

Each case mutates one field of the compliant estate. Regime checks run once per regime
pack. Findings are read through the CLI (`recon validate --format json`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.policy import RULES
from reconciler.policy.packs.regimes import REGIMES

FIXTURE = Path(__file__).parents[1] / "fixtures" / "compliant" / "estate.yaml"
AS_OF = "2026-11-21"
Estate = dict[tuple[str, str], dict[str, Any]]


def load_base(regimes: list[str]) -> Estate:
    documents = list(yaml.safe_load_all(FIXTURE.read_text()))
    estate = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    estate[("RecordingPolicy", "desk-voice")]["spec"]["regimes"] = regimes
    return estate


def write(estate: Estate, folder: Path) -> None:
    for (kind, name), document in estate.items():
        text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
        (folder / f"{kind}-{name}.yaml").write_text(text)


def validate(folder: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["validate", str(folder), "--format", "json", "--as-of", AS_OF])
    return result.exit_code, json.loads(result.output)


def spec(estate: Estate, kind: str, name: str) -> dict[str, Any]:
    document: dict[str, Any] = estate[(kind, name)]["spec"]
    return document


def add(estate: Estate, document: dict[str, Any]) -> None:
    estate[(document["kind"], document["metadata"]["name"])] = document


def waiver(name: str, rule: str, target: str, expires: str) -> dict[str, Any]:
    return {
        "apiVersion": "recon/v1",
        "kind": "Waiver",
        "metadata": {"name": name},
        "spec": {
            "rule": rule,
            "target": target,
            "reason": "accepted by the compliance committee",
            "owner": "head.of.compliance@bank.example",
            "expires": expires,
        },
    }


@dataclass(frozen=True)
class Case:
    rule: str
    mutate: Callable[[Estate], None]
    file: str
    line_has: str
    resource: str


POLICY, BUCKET, RETENTION = (
    ("RecordingPolicy", "desk-voice"),
    ("ArchiveBucket", "desk-archive"),
    ("RetentionPolicy", "desk-seven-years"),
)


def _set(key: tuple[str, str], path: str, value: Any) -> Callable[[Estate], None]:
    def mutate(estate: Estate) -> None:
        target = estate[key]["spec"]
        *parents, last = path.split(".")
        for part in parents:
            target = target[part]
        if value is None:
            del target[last]
        else:
            target[last] = value

    return mutate


REGIME_CASES: dict[str, tuple[Callable[[Estate], None], tuple[str, str], str]] = {
    "retention-minimum": (_set(RETENTION, "retain", "180d"), RETENTION, "retain:"),
    "record-all-directions": (_set(POLICY, "record.internal", "flow"), POLICY, "internal:"),
    "retention-own": (_set(POLICY, "retention", None), POLICY, "spec:"),
    "archive-required": (_set(POLICY, "archive", None), POLICY, "spec:"),
    "archive-object-lock": (_set(BUCKET, "objectLock.mode", "GOVERNANCE"), BUCKET, "mode:"),
    "archive-retention": (_set(BUCKET, "objectLock.defaultRetention", "5y"), BUCKET, "defaultRetention:"),
    "archive-encryption": (_set(BUCKET, "encryption", None), BUCKET, "spec:"),
    "archive-public-access": (_set(BUCKET, "publicAccess", "allowed"), BUCKET, "publicAccess:"),
    "archive-access-logging": (
        _set(BUCKET, "accessLogging.targetBucket", "bank-desk-recordings"),
        BUCKET,
        "targetBucket:",
    ),
    "archive-metadata-export": (_set(BUCKET, "metadataExport", False), BUCKET, "metadataExport:"),
}


def _regime_cases() -> list[Any]:
    cases = []
    for regime in REGIMES:
        for slug, (mutate, key, line_has) in REGIME_CASES.items():
            rule = f"{regime}.{slug}"
            file = f"{key[0]}-{key[1]}.yaml"
            resource = f"{key[0]}/{key[1]}"
            if slug in ("retention-minimum",):
                resource = f"{RETENTION[0]}/{RETENTION[1]}"
            cases.append(pytest.param(regime, Case(rule, mutate, file, line_has, resource), id=rule))
    return cases


def _second_policy_covers_queue(estate: Estate) -> None:
    spec(estate, "RecordingPolicy", "back-office-voice")["appliesTo"] = {"queues": ["rates-desk"]}


def _policy_without_regime(estate: Estate) -> None:
    spec(estate, "Queue", "rates-desk")["recordingPolicy"] = "back-office-voice"


def _too_many_traders(estate: Estate) -> None:
    traders = spec(estate, "CollectorTopology", "floor-collectors")["collectors"][0]["traders"]
    traders.extend({"id": f"T-X{i}", "user": f"x{i}@bank.example", "turret": f"TUR-X{i}"} for i in range(200))


def _uncovered_member(estate: Estate) -> None:
    spec(estate, "Queue", "rates-desk")["members"].append("new.joiner@bank.example")


def _duplicate_trader(estate: Estate) -> None:
    collectors = spec(estate, "CollectorTopology", "floor-collectors")["collectors"]
    collectors[1]["traders"].append({"id": "T-1B", "user": "ana.silva@bank.example", "turret": "TUR-9"})


def _release_without_ticket(estate: Estate) -> None:
    spec(estate, "LegalHold", "matter-001")["release"] = {
        "approvedBy": "general.counsel@bank.example",
        "reason": "matter closed",
    }


def _expired_waiver(estate: Estate) -> None:
    add(estate, waiver("old-waiver", "recon.market-data-breaker", "MarketDataFeed/rates-feed", "2026-01-31"))


def _unused_waiver(estate: Estate) -> None:
    add(estate, waiver("idle-waiver", "recon.market-data-breaker", "MarketDataFeed/rates-feed", "2027-06-30"))


def _two_settings_for_one_org(estate: Estate) -> None:
    for name in ("org-a", "org-b"):
        add(
            estate,
            {
                "apiVersion": "recon/v1",
                "kind": "RecordingSettings",
                "metadata": {"name": name},
                "spec": {"region": "eu-west-1", "regionalStorage": True},
            },
        )


CORE_CASES = [
    pytest.param(
        Case(
            "recon.recording-settings-per-org",
            _two_settings_for_one_org,
            "RecordingSettings-org-b.yaml",
            "region:",
            "RecordingSettings/org-b",
        ),
        id="recon.recording-settings-per-org",
    ),
    pytest.param(
        Case(
            "recon.queue-coverage",
            _set(("Queue", "rates-desk"), "recordingPolicy", None),
            "Queue-rates-desk.yaml",
            "regulated:",
            "Queue/rates-desk",
        ),
        id="recon.queue-coverage-none",
    ),
    pytest.param(
        Case(
            "recon.queue-coverage",
            _second_policy_covers_queue,
            "Queue-rates-desk.yaml",
            "recordingPolicy:",
            "Queue/rates-desk",
        ),
        id="recon.queue-coverage-two-policies",
    ),
    pytest.param(
        Case(
            "recon.queue-regime",
            _policy_without_regime,
            "RecordingPolicy-back-office-voice.yaml",
            "regimes:",
            "Queue/rates-desk",
        ),
        id="recon.queue-regime",
    ),
    pytest.param(
        Case(
            "recon.residency",
            _set(BUCKET, "region", "us-east-1"),
            "ArchiveBucket-desk-archive.yaml",
            "region:",
            "Queue/rates-desk",
        ),
        id="recon.residency-archive-outside-eu",
    ),
    pytest.param(
        Case(
            "recon.residency",
            _set(("Queue", "rates-desk"), "region", "eu-west-2"),
            "Queue-rates-desk.yaml",
            "region:",
            "Queue/rates-desk",
        ),
        id="recon.residency-org-in-uk",
    ),
    pytest.param(
        Case(
            "recon.market-data-timeout",
            _set(("MarketDataFeed", "rates-feed"), "timeoutMs", 201),
            "MarketDataFeed-rates-feed.yaml",
            "timeoutMs:",
            "MarketDataFeed/rates-feed",
        ),
        id="recon.market-data-timeout",
    ),
    pytest.param(
        Case(
            "recon.market-data-breaker",
            _set(("MarketDataFeed", "rates-feed"), "breaker", None),
            "MarketDataFeed-rates-feed.yaml",
            "spec:",
            "MarketDataFeed/rates-feed",
        ),
        id="recon.market-data-breaker",
    ),
    pytest.param(
        Case(
            "recon.hold-release-approval",
            _release_without_ticket,
            "LegalHold-matter-001.yaml",
            "release:",
            "LegalHold/matter-001",
        ),
        id="recon.hold-release-approval",
    ),
    pytest.param(
        Case(
            "recon.collector-trader-limit",
            _too_many_traders,
            "CollectorTopology-floor-collectors.yaml",
            "traders:",
            "CollectorTopology/floor-collectors",
        ),
        id="recon.collector-trader-limit",
    ),
    pytest.param(
        Case("recon.trader-uncovered", _uncovered_member, "Queue-rates-desk.yaml", "members:", "Queue/rates-desk"),
        id="recon.trader-uncovered",
    ),
    pytest.param(
        Case(
            "recon.trader-duplicate",
            _duplicate_trader,
            "CollectorTopology-floor-collectors.yaml",
            "id: T-1B",
            "CollectorTopology/floor-collectors",
        ),
        id="recon.trader-duplicate",
    ),
    pytest.param(
        Case("recon.waiver-expired", _expired_waiver, "Waiver-old-waiver.yaml", "expires:", "Waiver/old-waiver"),
        id="recon.waiver-expired",
    ),
    pytest.param(
        Case("recon.waiver-unused", _unused_waiver, "Waiver-idle-waiver.yaml", "rule:", "Waiver/idle-waiver"),
        id="recon.waiver-unused",
    ),
]


def _assert_fires(tmp_path: Path, regimes: list[str], case: Case) -> None:
    twin = load_base(regimes)
    write(twin, tmp_path)
    code, report = validate(tmp_path)
    assert code == 0, report
    assert report["findings"] == []

    broken = copy.deepcopy(twin)
    case.mutate(broken)
    for stale in tmp_path.iterdir():
        stale.unlink()
    write(broken, tmp_path)
    code, report = validate(tmp_path)
    assert report["inputErrors"] == []
    matching = [f for f in report["findings"] if f["rule"] == case.rule]
    assert len(matching) == 1, report["findings"]
    finding = matching[0]
    assert finding["resource"] == case.resource
    assert Path(finding["file"]).name == case.file
    line = (tmp_path / case.file).read_text().splitlines()[finding["line"] - 1]
    assert case.line_has in line, f"finding points at line {finding['line']}: {line!r}"
    assert finding["remediation"] == RULES[case.rule].remediation
    expected_exit = 3 if any(f["severity"] == "error" for f in report["findings"]) else 0
    assert code == expected_exit


@pytest.mark.parametrize(("regime", "case"), _regime_cases())
def test_regime_rule_fires_only_when_broken(tmp_path: Path, regime: str, case: Case) -> None:
    _assert_fires(tmp_path, [regime], case)


@pytest.mark.parametrize("case", CORE_CASES)
def test_core_rule_fires_only_when_broken(tmp_path: Path, case: Case) -> None:
    _assert_fires(tmp_path, ["mifid2"], case)


def test_every_registered_rule_has_a_case() -> None:
    covered = {f"{regime}.{slug}" for regime in REGIMES for slug in REGIME_CASES}
    covered |= {param.values[0].rule for param in CORE_CASES}
    assert covered == set(RULES)


@pytest.mark.parametrize(
    ("regime", "severity"),
    [("mifid2", "error"), ("fca", "error"), ("sec17a4", "warning"), ("cftc", "warning")],
    ids=[
        "mifid2-internal-calls-error",
        "fca-internal-calls-error",
        "sec17a4-internal-calls-warning",
        "cftc-internal-calls-warning",
    ],
)
def test_internal_call_severity_follows_the_regime(tmp_path: Path, regime: str, severity: str) -> None:
    estate = load_base([regime])
    spec(estate, *POLICY)["record"]["internal"] = "never"
    write(estate, tmp_path)
    code, report = validate(tmp_path)
    (finding,) = [f for f in report["findings"] if f["rule"] == f"{regime}.record-all-directions"]
    assert finding["severity"] == severity
    assert code == (3 if severity == "error" else 0)


def test_live_waiver_silences_its_rule_on_its_target_only(tmp_path: Path) -> None:
    estate = load_base(["mifid2"])
    _set(("MarketDataFeed", "rates-feed"), "breaker", None)(estate)
    add(estate, waiver("feed-migration", "recon.market-data-breaker", "MarketDataFeed/rates-feed", "2027-06-30"))
    write(estate, tmp_path)
    code, report = validate(tmp_path)
    assert code == 0
    assert report["findings"] == []
    assert [(w["rule"], w["waiver"]) for w in report["waived"]] == [
        ("recon.market-data-breaker", "Waiver/feed-migration")
    ]


def test_expired_waiver_silences_nothing(tmp_path: Path) -> None:
    estate = load_base(["mifid2"])
    _set(("MarketDataFeed", "rates-feed"), "breaker", None)(estate)
    add(estate, waiver("feed-migration", "recon.market-data-breaker", "MarketDataFeed/rates-feed", "2026-11-20"))
    write(estate, tmp_path)
    code, report = validate(tmp_path)
    assert code == 3
    assert sorted(f["rule"] for f in report["findings"]) == ["recon.market-data-breaker", "recon.waiver-expired"]
    assert report["waived"] == []


def test_waiver_on_the_expiry_day_still_applies(tmp_path: Path) -> None:
    estate = load_base(["mifid2"])
    _set(("MarketDataFeed", "rates-feed"), "breaker", None)(estate)
    add(estate, waiver("feed-migration", "recon.market-data-breaker", "MarketDataFeed/rates-feed", AS_OF))
    write(estate, tmp_path)
    code, _ = validate(tmp_path)
    assert code == 0


def test_waiver_naming_an_unknown_rule_is_an_input_error(tmp_path: Path) -> None:
    estate = load_base(["mifid2"])
    add(estate, waiver("typo", "recon.market-data-braker", "MarketDataFeed/rates-feed", "2027-06-30"))
    write(estate, tmp_path)
    code, report = validate(tmp_path)
    assert code == 1
    (error,) = report["inputErrors"]
    assert error["code"] == "waiver.unknown-rule"
    assert "did you mean 'recon.market-data-breaker'" in error["message"]
    assert error["field"] == "spec.rule"
