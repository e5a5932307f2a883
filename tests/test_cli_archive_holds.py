"""End to end through the CLI on the sandbox target: a LegalHold also puts S3 object legal
holds on the archived recordings of the conversations it holds.

The energy-desk-eu example is applied (its archive bucket created in the sandbox's moto
S3), then recordings of some held conversations are "exported" into that bucket with boto3
in the Genesys layout (reconciler.providers.archive_layout), at their real start times from
the sandbox's Genesys server. The next plan shows the hold's `archived`, apply sets the
holds, a third plan is clean, and a hold lifted by hand on one object version is drift.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import EXAMPLES, Recon
from test_cli_genesys import Org

from reconciler.providers.archive_layout import METADATA_FILE, conversation_prefix

HOLD = "LegalHold/matter-2026-017"
BUCKET = "acme-trading-recordings-eu"
KMS_ALIAS = "alias/trading-recordings"
ORG_ID = "3f2c9a4e-sandbox-org"
"""The sandbox has no GET /api/v2/organizations/me: any folder name stands for the org."""


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def plan_json(recon: Recon, root: Path) -> dict[str, Any]:
    result = recon("plan", "--format", "json", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def hold_change(plan: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in plan["resource_changes"] if c["address"] == HOLD)


def aws(root: Path, service: str) -> Any:
    s3 = json.loads((root / ".recon" / "sandbox" / "endpoints.json").read_text())["services"]["s3"]
    return boto3.client(
        service,
        endpoint_url=s3["url"],
        region_name=s3["region"],
        aws_access_key_id=s3["accessKeyId"],
        aws_secret_access_key=s3["secretAccessKey"],
    )


def ensure_kms_alias(root: Path) -> None:
    """The example's bucket needs alias/trading-recordings; create it unless the sandbox seeds it."""
    kms = aws(root, "kms")
    if not any(a["AliasName"] == KMS_ALIAS for a in kms.list_aliases()["Aliases"]):
        key = kms.create_key(Description="trading recordings (test seed)")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=KMS_ALIAS, TargetKeyId=key)


def start_times(org: Org) -> dict[str, str]:
    """Conversation id → startTime (ISO) of every conversation in the sandbox's July-September."""
    found: dict[str, str] = {}
    number = 1
    while True:
        page = org.get(
            "/api/v2/sandbox/conversations",
            pageSize=100,
            pageNumber=number,
            **{"from": "2026-07-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"},
        )
        found |= {c["id"]: c["startTime"] for c in page["entities"]}
        if number >= page["pageCount"]:
            return found
        number += 1


def export(s3: Any, conversation: str, started: str, *, versions: int = 1) -> None:
    """What Genesys's S3 export writes for one recording: the audio (re-exported `versions`
    times) and its _metadata.json, under the conversation's start hour."""
    from datetime import datetime  # noqa: PLC0415

    at = datetime.fromisoformat(started.replace("Z", "+00:00"))
    folder = conversation_prefix(ORG_ID, at, conversation)
    for round_ in range(versions):
        s3.put_object(Bucket=BUCKET, Key=f"{folder}{conversation}.opus", Body=f"audio {round_}".encode())
    metadata = {"conversationId": conversation, "startTime": started, "participants": []}
    s3.put_object(Bucket=BUCKET, Key=f"{folder}{METADATA_FILE}", Body=json.dumps(metadata).encode())


def legal_holds(s3: Any) -> dict[str, set[str]]:
    """Conversation id → the legal-hold statuses of its object versions in the bucket."""
    out: dict[str, set[str]] = {}
    for version in s3.list_object_versions(Bucket=BUCKET).get("Versions") or []:
        key = version["Key"]
        answer = s3.get_object_legal_hold(Bucket=BUCKET, Key=key, VersionId=version["VersionId"])
        conversation = key.split("conversation_id=")[1].split("/")[0]
        out.setdefault(conversation, set()).add((answer.get("LegalHold") or {}).get("Status", "OFF"))
    return out


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    root = tmp_path / "desk"
    shutil.copytree(EXAMPLES / "energy-desk-eu", root)
    return root


def test_a_hold_locks_archived_recordings_and_a_lifted_object_hold_is_drift(recon: Recon, desk: Path) -> None:
    first = hold_change(plan_json(recon, desk))  # also starts the sandbox
    assert first["action"] == "create" and "archived" not in first["change"]["after"], "no bucket yet: nothing archived"
    ensure_kms_alias(desk)
    ok(recon("apply", "--auto-approve", cwd=desk))

    held_ids = sorted(first["change"]["after"]["conversations"])
    starts = start_times(Org(desk))
    archived = held_ids[:3]
    not_held = next(c for c in sorted(starts) if c not in held_ids)
    s3 = aws(desk, "s3")
    for index, conversation in enumerate([*archived, not_held]):
        export(s3, conversation, starts[conversation], versions=2 if index == 0 else 1)

    second = hold_change(plan_json(recon, desk))
    assert second["action"] == "update" and second["safety"] == "reversible", second
    assert second["change"]["after"]["archived"] == {BUCKET: archived}
    assert "archived" not in second["change"]["before"]

    ok(recon("apply", "--auto-approve", cwd=desk))
    statuses = legal_holds(s3)
    assert {c: statuses[c] for c in archived} == {c: {"ON"} for c in archived}, "every version, audio and metadata"
    assert statuses[not_held] == {"OFF"}, "a recording the hold does not cover is left alone"
    clean = recon("plan", "--detailed-exitcode", cwd=desk)
    assert clean.returncode == 0 and "No changes" in clean.stdout, clean.stdout + clean.stderr

    lifted = next(
        v
        for v in s3.list_object_versions(Bucket=BUCKET)["Versions"]
        if f"conversation_id={archived[0]}/" in v["Key"] and not v["IsLatest"]
    )
    s3.put_object_legal_hold(
        Bucket=BUCKET, Key=lifted["Key"], VersionId=lifted["VersionId"], LegalHold={"Status": "OFF"}
    )
    drift = recon("drift", cwd=desk)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert HOLD in drift.stdout and "archived" in drift.stdout, drift.stdout

    ok(recon("apply", "--auto-approve", cwd=desk))
    assert legal_holds(s3)[archived[0]] == {"ON"}, "apply puts the lifted hold back"
    assert ok(recon("drift", cwd=desk)).returncode == 0
