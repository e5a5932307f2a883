"""RecordingSettings end to end through the CLI against the Genesys sandbox: the org's one
settings object is adopted and converged read-modify-write, a console edit is drift with
who and when, a value outside the platform's bounds is refused at validation with file,
line and field, two settings for one org are a rule error, and removing the manifest
never resets the org."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Recon
from test_cli_genesys import Org, ok

SETTINGS = """apiVersion: recon/v1
kind: RecordingSettings
metadata: {name: org-recording}
spec:
  region: eu-west-1
  regionalStorage: true
  stopWhenOnlyExternalParticipants: false
  playbackLinkExpiry: 15m
  downloadLinkExpiry: 1h
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "org"
    root.mkdir()
    (root / "recon.yaml").write_text("target: sandbox\n", encoding="utf-8")
    (root / "settings.yaml").write_text(SETTINGS, encoding="utf-8")
    return root


def settings(root: Path) -> dict[str, Any]:
    found: dict[str, Any] = Org(root).get("/api/v2/recording/settings")
    return found


def test_settings_are_adopted_converged_and_unmanaged_fields_kept(recon: Recon, project: Path) -> None:
    planned = json.loads(ok(recon("plan", "--format", "json", cwd=project)).stdout)
    (change,) = planned["resource_changes"]
    assert (change["address"], change["action"], change["adopt"]) == (
        "RecordingSettings/org-recording",
        "update",
        True,
    ), "the org always has settings: the first plan adopts and updates them"
    assert change["change"]["before"] == {
        "regionalStorage": False,
        "playbackLinkExpiry": "60m",
        "downloadLinkExpiry": "720m",
    }, "the seed's values, in manifest names; the platform reports no external-only flag"
    assert change["change"]["after"] == {
        "regionalStorage": True,
        "stopWhenOnlyExternalParticipants": False,
        "playbackLinkExpiry": "15m",
        "downloadLinkExpiry": "60m",
    }, "1h is planned as whole minutes"
    ok(recon("apply", "--auto-approve", cwd=project))
    live = settings(project)
    assert live["regionalRecordingStorageEnabled"] is True
    assert live["stopRecordingWhenOnlyExternalParticipants"] is False
    assert (live["recordingPlaybackUrlTtl"], live["recordingBatchDownloadUrlTtl"]) == (15, 60)
    assert live["maxSimultaneousStreams"] == 5, "read-modify-write kept a setting recon does not manage"
    again = ok(recon("plan", "--detailed-exitcode", "-v", cwd=project))
    assert "No changes" in again.stdout


def test_console_edit_is_drift_with_who_and_apply_restores_it(recon: Recon, project: Path) -> None:
    ok(recon("apply", "--auto-approve", cwd=project))
    ok(
        recon(
            "sandbox", "mutate", "settings", "recordingsettings",
            "--set", "recordingPlaybackUrlTtl=60", "--set", "maxSimultaneousStreams=9",
            "--by", "jane.doe@acme.example", cwd=project,
        )
    )  # fmt: skip
    drift = recon("drift", cwd=project)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "RecordingSettings/org-recording" in drift.stdout
    assert "by jane.doe@acme.example at 20" in drift.stdout and "via admin-console" in drift.stdout
    assert 'playbackLinkExpiry: "15m" -> "60m"' in drift.stdout
    assert "maxSimultaneousStreams" not in drift.stdout, "not managed, so not drift"
    ok(recon("apply", "--auto-approve", cwd=project))
    live = settings(project)
    assert (live["recordingPlaybackUrlTtl"], live["maxSimultaneousStreams"]) == (15, 9)
    assert ok(recon("drift", cwd=project)).returncode == 0


@pytest.mark.parametrize(
    ("line", "value", "says"),
    [
        pytest.param("playbackLinkExpiry: 15m", "playbackLinkExpiry: 90m", "2m to 60m", id="playback-link-over-an-hour"),
        pytest.param("downloadLinkExpiry: 1h", "downloadLinkExpiry: 90s", "whole number of minutes", id="download-link-in-seconds"),
        pytest.param("playbackLinkExpiry: 15m", "playbackLinkExpiry: 1m", "2m to 60m", id="playback-link-under-two-minutes"),
    ],
)  # fmt: skip
def test_out_of_bounds_link_lifetimes_are_refused_with_file_line_and_field(
    recon: Recon, project: Path, line: str, value: str, says: str
) -> None:
    path = project / "settings.yaml"
    path.write_text(path.read_text().replace(line, value), encoding="utf-8")
    result = recon("plan", cwd=project)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    field = value.split(":", maxsplit=1)[0]
    assert f"settings.yaml:{SETTINGS.splitlines().index('  ' + line) + 1}" in output, output
    assert field in output and says in output, output
    assert not (project / ".recon" / "sandbox" / "endpoints.json").exists(), "bad input starts nothing"


def test_two_settings_for_one_org_are_a_rule_error(recon: Recon, project: Path) -> None:
    second = SETTINGS.replace("org-recording", "org-recording-2")
    (project / "settings-2.yaml").write_text(second, encoding="utf-8")
    result = recon("validate", ".", cwd=project)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.count("error[recon.recording-settings-per-org]") == 1, result.stdout
    assert "RecordingSettings/org-recording-2" in result.stdout and "RecordingSettings/org-recording " in result.stdout


def test_removing_the_manifest_never_resets_the_org(recon: Recon, project: Path) -> None:
    ok(recon("apply", "--auto-approve", cwd=project))
    (project / "settings.yaml").unlink()
    (project / "queue.yaml").write_text(
        "apiVersion: recon/v1\nkind: Queue\nmetadata: {name: energy-desk-gas}\n"
        "spec: {regulated: false, region: eu-west-1, clientRegion: EU}\n",
        encoding="utf-8",
    )
    plan = ok(recon("plan", "--prune", cwd=project))
    assert "recon never deletes a RecordingSettings" in plan.stdout, plan.stdout
    ok(recon("apply", "--auto-approve", "--prune", cwd=project))
    assert settings(project)["recordingPlaybackUrlTtl"] == 15, "left as recon last set it"
    forgotten = ok(recon("apply", "--auto-approve", "--forget", cwd=project))
    assert "RecordingSettings/org-recording" in forgotten.stdout
