"""Issue 17, class 6 in manifests and the project file: every number, duration, date and
instant is checked before it can overflow, or mean something absurd, later.

Each case takes an example estate, changes one value, and expects exactly one diagnostic:
at the file and line of that value, naming the field, saying what is wrong and what to
write. The values are the ones that crashed or misled recon (a 400-digit `retain`, a hold
from 0001-01-01 to 9999-12-31, a huge `lateRecordingGrace`, a naive `expires`, a poll
every millisecond, a retention S3 cannot lock) and their neighbours.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.diagnostics import Diagnostic
from reconciler.errors import InputError
from reconciler.manifest.loader import load_estate
from tests.conftest import EXAMPLES, Recon

HUGE = "9" * 400


def diagnostics_after(tmp_path: Path, desk: str, file: str, old: str, new: str) -> list[Diagnostic]:
    folder = tmp_path / desk
    shutil.copytree(EXAMPLES / desk, folder)
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{file} has no {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    try:
        load_estate([folder])
    except InputError as error:
        return list(error.diagnostics)
    return []


EU = "energy-desk-eu"
US = "fx-desk-us"
CASES = [
    # (desk, file, old text, new text, field, message)
    (EU, "retention.yaml", "retain: 7y", f"retain: {HUGE}y", "spec.retain", "longer than 1000y"),
    (EU, "retention.yaml", "retain: 7y", "retain: 99999999999y", "spec.retain", "longer than 1000y"),
    (EU, "retention.yaml", "retain: 7y", "retain: 101y", "spec.retain", "longer than 100y"),
    (EU, "retention.yaml", "retain: 7y", "retain: 12h", "spec.retain", "shorter than 1d"),
    (EU, "retention.yaml", "retain: 7y", "retain: 1e30y", "spec.retain", "is not a duration"),
    (EU, "retention.yaml", "retain: 7y", "retain: 1e30", "spec.retain", "got a number"),
    (EU, "retention.yaml", "retain: 7y", 'retain: "7y\\n"', "spec.retain", "'7y\\n' is not a duration"),
    (EU, "retention.yaml", "archiveAfter: 30d", "archiveAfter: 0d", "spec.archiveAfter", "shorter than 1d"),
    (EU, "archive.yaml", "defaultRetention: 7y", "defaultRetention: 36501d", "spec.objectLock.defaultRetention",
     "longer than S3 Object Lock allows (at most 36500d or 100y)"),
    (EU, "archive.yaml", "defaultRetention: 7y", "defaultRetention: 101y", "spec.objectLock.defaultRetention",
     "longer than S3 Object Lock allows"),
    (EU, "holds.yaml", "from: 2026-07-01", "from: 0001-01-01", "spec.scope.from",
     "0001-01-01 is outside the dates recon accepts (from 1970-01-01 to 2199-12-31)"),
    (EU, "holds.yaml", "to: 2026-09-30", "to: 9999-12-31", "spec.scope.to", "outside the dates recon accepts"),
    (EU, "holds.yaml", "to: 2026-09-30", "to: 2026-09-30T00:00:00+05:00", "spec.scope.to",
     "a time of day is not allowed here"),
    (EU, "holds.yaml", "to: 2026-09-30", 'to: "2026-09-30\\n"', "spec.scope.to", "is not a date"),
    (EU, "holds.yaml", "to: 2026-09-30", "to: 20260930", "spec.scope.to", "expected a date, got a number"),
    (EU, "collectors.yaml", "lateRecordingGrace: 5m", "lateRecordingGrace: 99999999999999999y",
     "spec.matching.lateRecordingGrace", "longer than 1000y"),
    (EU, "collectors.yaml", "lateRecordingGrace: 5m", "lateRecordingGrace: 25h",
     "spec.matching.lateRecordingGrace", "longer than 24h"),
    (EU, "collectors.yaml", "startTolerance: 2s", "startTolerance: 1h", "spec.matching.startTolerance",
     "longer than 10m"),
    (EU, "collectors.yaml", "pollInterval: 10s", "pollInterval: 1ms", "spec.collectors[0].pollInterval",
     "1ms is shorter than 1s; write a duration from 1s to 1h"),
    (EU, "collectors.yaml", "from: 2026-01-01T00:00:00Z", "from: 2026-01-01T00:00:00", "spec.exemptions[0].from",
     "has no time zone"),
    (EU, "collectors.yaml", "from: 2026-01-01T00:00:00Z", 'from: "2026-01-01T00:00:00"', "spec.exemptions[0].from",
     "has no time zone"),
    (EU, "collectors.yaml", "from: 2026-01-01T00:00:00Z", "from: 2026-01-01", "spec.exemptions[0].from",
     "a date alone is not an instant"),
    (EU, "collectors.yaml", "from: 2026-01-01T00:00:00Z", "from: 1767225600", "spec.exemptions[0].from",
     "expected a date and time, got a number"),
    (EU, "collectors.yaml", "to: 2027-01-01T00:00:00Z", "to: 9999-12-31T23:59:59-23:59", "spec.exemptions[0].to",
     "outside the dates recon accepts"),
    (EU, "collectors.yaml", "target: 99.9%", "target: .nan", "spec.target", "not finite"),
    (EU, "collectors.yaml", "target: 99.9%", 'target: "1e30%"', "spec.target", "is not a percentage"),
    (EU, "collectors.yaml", "target: 99.9%", 'target: "99.9%\\n"', "spec.target", "is not a percentage"),
    (EU, "market-data.yaml", "timeoutMs: 200", "timeoutMs: 1", "spec.timeoutMs", "must be at least 10"),
    (EU, "market-data.yaml", "timeoutMs: 200", "timeoutMs: 1e30", "spec.timeoutMs", "expected a whole number"),
    (EU, "market-data.yaml", "timeoutMs: 200", "timeoutMs: true", "spec.timeoutMs", "expected a whole number"),
    (EU, "market-data.yaml", "timeoutMs: 200", f"timeoutMs: {HUGE}", "spec.timeoutMs", "outside the 64-bit range"),
    (EU, "market-data.yaml", "resetAfter: 30s", "resetAfter: 1ms", "spec.breaker.resetAfter", "shorter than 1s"),
    (EU, "market-data.yaml", "failureThreshold: 5", f"failureThreshold: {HUGE}", "spec.breaker.failureThreshold",
     "outside the 64-bit range"),
    (EU, "settings.yaml", "playbackLinkExpiry: 15m", "playbackLinkExpiry: 99999999999y", "spec.playbackLinkExpiry",
     "longer than 1000y"),
    (US, "waivers.yaml", "expires: 2027-12-31", "expires: 2027-12-31T00:00:00", "spec.expires",
     "a time of day is not allowed here"),
    (US, "waivers.yaml", "expires: 2027-12-31", "expires: 9999-12-31", "spec.expires",
     "outside the dates recon accepts"),
    (EU, "recon.yaml", "clientSecret: env:GENESYS_CLIENT_SECRET",
     f"clientSecret: env:GENESYS_CLIENT_SECRET\n      ratePerMinute: {HUGE}",
     "targets.prod-eu.genesys.ratePerMinute", "outside the 64-bit range"),
    (EU, "recon.yaml", "clientSecret: env:GENESYS_CLIENT_SECRET",
     "clientSecret: env:GENESYS_CLIENT_SECRET\n      ratePerMinute: 1.5",
     "targets.prod-eu.genesys.ratePerMinute", "expected a whole number"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("desk", "file", "old", "new", "field", "message"),
    CASES,
    ids=[f"{c[4]}={c[3].split(': ', 1)[-1][:24]}" for c in CASES],
)
def test_value_is_refused_at_its_line(
    tmp_path: Path, desk: str, file: str, old: str, new: str, field: str, message: str
) -> None:
    found = diagnostics_after(tmp_path, desk, file, old, new)
    shown = "\n".join(d.render() for d in found)
    assert [d.field for d in found] == [field], shown
    (diagnostic,) = found
    assert message in diagnostic.message, shown
    assert diagnostic.location.file.endswith(file) and diagnostic.location.line > 0, shown
    original = (EXAMPLES / desk / file).read_text(encoding="utf-8")
    value_line = original[: original.index(old)].count("\n") + 1 + new.count("\n")
    assert diagnostic.location.line == value_line, shown


@pytest.mark.parametrize(
    ("desk", "file", "old", "new"),
    [
        pytest.param(EU, "archive.yaml", "defaultRetention: 7y", "defaultRetention: 36500d", id="lock-36500d"),
        pytest.param(EU, "archive.yaml", "defaultRetention: 7y", "defaultRetention: 100y", id="lock-100y"),
        pytest.param(EU, "holds.yaml", "from: 2026-07-01", "from: 1970-01-01", id="hold-from-epoch"),
        pytest.param(EU, "holds.yaml", "to: 2026-09-30", "to: 2199-12-31", id="hold-to-last-day"),
        pytest.param(EU, "collectors.yaml", "pollInterval: 10s", "pollInterval: 1s", id="poll-1s"),
        pytest.param(EU, "collectors.yaml", "lateRecordingGrace: 5m", "lateRecordingGrace: 24h", id="grace-24h"),
        pytest.param(
            EU, "collectors.yaml", "from: 2026-01-01T00:00:00Z", 'from: "2026-01-01T01:00:00+01:00"', id="offset-text"
        ),
    ],
)
def test_values_at_the_bounds_load(tmp_path: Path, desk: str, file: str, old: str, new: str) -> None:
    found = diagnostics_after(tmp_path, desk, file, old, new)
    assert found == [], "\n".join(d.render() for d in found)


def test_validate_reports_the_overflowing_values_and_exits_1(recon: Recon, tmp_path: Path) -> None:
    desk = tmp_path / "desk"
    shutil.copytree(EXAMPLES / EU, desk)
    for file, old, new in (
        ("retention.yaml", "retain: 7y", f"retain: {HUGE}y"),
        ("holds.yaml", "from: 2026-07-01", "from: 0001-01-01"),
        ("holds.yaml", "to: 2026-09-30", "to: 9999-12-31"),
        ("collectors.yaml", "lateRecordingGrace: 5m", "lateRecordingGrace: 99999999999999999y"),
    ):
        path = desk / file
        path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    result = recon("validate", str(desk))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for where in ("retention.yaml:6:11: error: spec.retain", "holds.yaml:10:11: error: spec.scope.from",
                  "holds.yaml:11:9: error: spec.scope.to", "collectors.yaml:23:25: error: spec.matching.lateRecordingGrace"):  # fmt: skip
        assert where in result.stdout, result.stdout
    assert HUGE not in result.stdout, "a 400-digit value is not echoed whole"
