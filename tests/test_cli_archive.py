"""ArchiveBucket end to end through the CLI on the sandbox target: recon creates the bucket in
the sandbox's S3 (a moto server over HTTP) through boto3 with every attribute, a second plan
is empty, a missing KMS alias is a plan error naming it, the WORM safety classes hold (one-way
needs --allow-one-way, forbidden blocks the plan and sends nothing), and a change made outside
recon (versioning suspended, a reader added) is drift that apply restores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import EXAMPLES, Recon
from test_cli_genesys import ok

BUCKET, LOGS = "acme-trading-recordings-eu", "acme-trading-recordings-eu-logs"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    root.mkdir()
    (root / "recon.yaml").write_text("target: sandbox\n", encoding="utf-8")
    (root / "archive.yaml").write_text((EXAMPLES / "energy-desk-eu" / "archive.yaml").read_text(), encoding="utf-8")
    return root


def s3(root: Path) -> Any:
    entry = json.loads((root / ".recon" / "sandbox" / "endpoints.json").read_text())["services"]["s3"]
    return boto3.client(
        "s3",
        endpoint_url=entry["url"],
        region_name="eu-west-1",
        aws_access_key_id=entry["accessKeyId"],
        aws_secret_access_key=entry["secretAccessKey"],
    )


def edit(root: Path, old: str, new: str) -> None:
    path = root / "archive.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_every_attribute_lands_in_s3_and_a_second_plan_is_empty(recon: Recon, project: Path) -> None:
    ok(recon("apply", "--auto-approve", cwd=project))
    client = s3(project)
    lock = client.get_object_lock_configuration(Bucket=BUCKET)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE" and lock["Rule"]["DefaultRetention"]["Years"] == 7
    assert client.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rule = client.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    block = client.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    policy = json.loads(client.get_bucket_policy(Bucket=BUCKET)["Policy"])
    readers = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert readers[0]["Principal"]["AWS"] in (
        "arn:aws:iam::123456789012:role/compliance-reviewer",
        ["arn:aws:iam::123456789012:role/compliance-reviewer"],
    )
    logging = client.get_bucket_logging(Bucket=BUCKET)["LoggingEnabled"]
    assert (logging["TargetBucket"], logging["TargetPrefix"]) == (LOGS, "access/")
    again = ok(recon("plan", "--detailed-exitcode", "-v", cwd=project))
    assert "No changes" in again.stdout, again.stdout


def test_a_missing_kms_alias_is_a_plan_error_naming_it(recon: Recon, project: Path) -> None:
    edit(project, "alias/trading-recordings", "alias/nobody-made-this")
    result = recon("plan", cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "alias/nobody-made-this does not exist in eu-west-1" in result.stderr
    assert "createKey: true" in result.stderr
    assert BUCKET not in {b["Name"] for b in s3(project).list_buckets()["Buckets"]}, "nothing was created"


@pytest.mark.parametrize(
    ("old", "new", "exit_code", "says"),
    [
        pytest.param("defaultRetention: 7y", "defaultRetention: 5y", 3, "cannot be shortened", id="shorten-compliance-retention-forbidden"),
        pytest.param("mode: COMPLIANCE", "mode: GOVERNANCE", 3, "GOVERNANCE", id="compliance-to-governance-forbidden"),
        pytest.param("defaultRetention: 7y", "defaultRetention: 10y", 1, "--allow-one-way", id="lengthen-compliance-retention-one-way"),
    ],
)  # fmt: skip
def test_worm_safety_classes_hold_and_nothing_is_sent(
    recon: Recon, project: Path, old: str, new: str, exit_code: int, says: str
) -> None:
    ok(recon("apply", "--auto-approve", cwd=project))
    edit(project, old, new)
    result = recon("apply", "--auto-approve", cwd=project)
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert says in result.stdout + result.stderr
    rule = s3(project).get_object_lock_configuration(Bucket=BUCKET)["ObjectLockConfiguration"]["Rule"]
    assert rule["DefaultRetention"] == {"Mode": "COMPLIANCE", "Years": 7} or rule["DefaultRetention"] == {
        "Mode": "COMPLIANCE",
        "Years": 7,
        "Days": 0,
    }, "the bucket is untouched"


def test_changes_outside_recon_are_drift_and_apply_restores_them(recon: Recon, project: Path) -> None:
    ok(recon("apply", "--auto-approve", cwd=project))
    client = s3(project)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    client.delete_public_access_block(Bucket=BUCKET)
    drift = recon("drift", cwd=project)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "ArchiveBucket/trading-archive-eu" in drift.stdout
    assert "versioning" in drift.stdout and "publicAccess" in drift.stdout
    plan = ok(recon("plan", cwd=project))
    assert '~ versioning: "Suspended" -> "Enabled"' in plan.stdout, "turning it back on is reversible"
    ok(recon("apply", "--auto-approve", cwd=project))
    assert client.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    assert all(client.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"].values())
    assert ok(recon("drift", cwd=project)).returncode == 0
