"""The ArchiveBucket safety table (reconciler.providers.aws.bucket_safety), case by case.

Pure: no server. Every rule is checked in the direction that trips it and in the direction
that must not."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.providers.aws import ArchiveBucketProvider, bucket_rules, classify_bucket
from reconciler.providers.aws.bucket_safety import compare_durations
from reconciler.providers.base import Action, ProposedChange, Safety

F, W, R = Safety.FORBIDDEN, Safety.ONE_WAY, Safety.REVERSIBLE


def bucket(mode: str | None = "COMPLIANCE", retention: str = "7y", **changes: Any) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "bucketName": "eu-power-recordings",
        "region": "eu-west-1",
        "objectLock": None if mode is None else {"mode": mode, "defaultRetention": retention},
        "versioning": "Enabled",
        "publicAccess": "blocked",
        "readers": ["arn:aws:iam::123456789012:role/compliance-reviewer"],
        "tags": {"desk": "eu-power"},
    }
    attributes.update(changes)
    return attributes


def update(before: dict[str, Any], after: dict[str, Any]) -> ProposedChange:
    return ProposedChange("ArchiveBucket", "eu-power", Action.UPDATE, before, after)


CASES: list[tuple[str, ProposedChange, Safety, str]] = [
    # retention under COMPLIANCE
    ("compliance-retention-shortened-7y-to-5y", update(bucket(), bucket(retention="5y")), F, "cannot be shortened"),
    ("compliance-retention-shortened-7y-to-2555d", update(bucket(), bucket(retention="2555d")), F, "shortened"),
    ("compliance-retention-lengthened-7y-to-10y", update(bucket(), bucket(retention="10y")), W, "lengthening"),
    ("compliance-retention-lengthened-7y-to-2557d", update(bucket(), bucket(retention="2557d")), W, "lengthening"),
    ("compliance-retention-same-length-is-reversible", update(bucket(retention="7y"), bucket(retention="7y")), R, ""),
    ("compliance-retention-unreadable-counts-as-shortened", update(bucket(), bucket(retention="soon")), F, "shortened"),
    # retention under GOVERNANCE
    ("governance-retention-shortened-is-reversible", update(bucket("GOVERNANCE"), bucket("GOVERNANCE", "1y")), R, ""),
    ("governance-retention-lengthened-is-reversible", update(bucket("GOVERNANCE"), bucket("GOVERNANCE", "9y")), R, ""),
    # mode
    ("mode-compliance-to-governance", update(bucket(), bucket("GOVERNANCE")), F, "COMPLIANCE to GOVERNANCE"),
    ("mode-governance-to-compliance", update(bucket("GOVERNANCE"), bucket()), W, "cannot be undone"),
    ("mode-governance-to-compliance-shorter", update(bucket("GOVERNANCE", "9y"), bucket(retention="1y")), W, ""),
    ("mode-compliance-to-governance-and-shorter", update(bucket(), bucket("GOVERNANCE", "1y")), F, "shortened"),
    # lock on / off
    ("lock-disabled-compliance", update(bucket(), bucket(None)), F, "cannot be turned off"),
    ("lock-disabled-governance", update(bucket("GOVERNANCE"), bucket(None)), F, "cannot be turned off"),
    ("lock-enabled-on-existing-bucket", update(bucket(None), bucket()), W, "enabling Object Lock"),
    ("lock-enabled-governance-on-existing-bucket", update(bucket(None), bucket("GOVERNANCE")), W, "enabling"),
    # versioning
    (
        "versioning-suspended-on-lock-bucket",
        update(bucket(), bucket(versioning="Suspended")),
        F,
        "on an Object Lock bucket",
    ),
    ("versioning-suspended-without-lock", update(bucket(None), bucket(None, versioning="Suspended")), F, "suspended"),
    ("versioning-removed", update(bucket(), bucket(versioning=None)), F, "suspended"),
    ("versioning-re-enabled-is-reversible", update(bucket(versioning="Suspended"), bucket()), R, ""),
    ("versioning-enabled-on-unversioned-is-reversible", update(bucket(None, versioning=None), bucket(None)), R, ""),
    # delete / replace / identity
    (
        "delete-lock-bucket",
        ProposedChange("ArchiveBucket", "eu-power", Action.DELETE, bucket(), None),
        F,
        "under Object Lock",
    ),
    (
        "delete-bucket-without-lock",
        ProposedChange("ArchiveBucket", "eu-power", Action.DELETE, bucket(None), None),
        F,
        "never deletes an archive",
    ),
    (
        "replace-lock-bucket-new-name",
        ProposedChange("ArchiveBucket", "eu-power", Action.REPLACE, bucket(), bucket(bucketName="other")),
        F,
        "Replacing bucket eu-power-recordings",
    ),
    (
        "replace-lock-bucket-new-region",
        ProposedChange("ArchiveBucket", "eu-power", Action.REPLACE, bucket(), bucket(region="eu-central-1")),
        F,
        "under Object Lock",
    ),
    ("update-renaming-bucket-in-place", update(bucket(), bucket(bucketName="other-name")), F, "name cannot change"),
    ("update-moving-region-in-place", update(bucket(), bucket(region="us-east-1")), F, "region cannot change"),
    # everything else
    ("create-new-lock-bucket", ProposedChange("ArchiveBucket", "x", Action.CREATE, None, bucket()), R, ""),
    ("readers-changed", update(bucket(), bucket(readers=[])), R, ""),
    ("tags-changed", update(bucket(), bucket(tags={})), R, ""),
    ("public-access-allowed", update(bucket(), bucket(publicAccess="allowed")), R, ""),
    ("encryption-changed", update(bucket(), bucket(encryption={"kmsKeyAlias": "alias/b"})), R, ""),
    ("logging-added", update(bucket(), bucket(accessLogging={"targetBucket": "logs", "prefix": ""})), R, ""),
    ("no-op", ProposedChange("ArchiveBucket", "x", Action.NOOP, bucket(), bucket()), R, ""),
]


@pytest.mark.parametrize(("change", "safety", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_safety_table(change: ProposedChange, safety: Safety, reason: str) -> None:
    result = classify_bucket(change)
    assert result.safety is safety, result.reason
    assert reason in result.reason
    if safety is not Safety.REVERSIBLE:
        assert result.reason[0].isalpha() and "_" not in result.reason.split(":")[0]


def test_provider_classify_uses_the_table() -> None:
    change = update(bucket(), bucket(retention="1y"))
    assert ArchiveBucketProvider.classify(object.__new__(ArchiveBucketProvider), change).safety is F


def test_several_findings_keep_only_the_worst_reasons() -> None:
    findings = bucket_rules(update(bucket("GOVERNANCE"), bucket(retention="7y", versioning="Suspended")))
    assert {safety for safety, _ in findings} == {W, F}
    result = classify_bucket(update(bucket("GOVERNANCE"), bucket(retention="7y", versioning="Suspended")))
    assert result.safety is F and "COMPLIANCE" not in result.reason


@pytest.mark.parametrize(
    ("after", "before", "order"),
    [("7y", "2557d", -1), ("2557d", "7y", 1), ("365d", "1y", -1), ("7y", "7y", 0), (None, "1d", -1), ("x", "1d", None)],
    ids=[
        "7y-shorter-than-2557d",
        "2557d-longer-than-7y",
        "365d-shorter-than-1y",
        "same",
        "absent-is-zero",
        "unreadable",
    ],
)
def test_durations_compare_by_length(after: str | None, before: str, order: int | None) -> None:
    assert compare_durations(after, before) == order
