"""ArchiveBucket attributes ↔ the S3 API's shapes, both ways. Pure: no I/O.

Attributes are the ArchiveBucket spec in manifest shape (by alias, JSON values), plus
`versioning` ("Enabled" / "Suspended"), which `expand` adds to desired attributes so that
a bucket whose versioning was suspended outside recon shows as drift and is judged by the
safety rules. Mapping, one attribute per S3 configuration:

    bucketName                   the bucket (its id)
    region                       GetBucketLocation (None → us-east-1, EU → eu-west-1)
    objectLock{mode, defaultRetention}
                                 Get/PutObjectLockConfiguration Rule.DefaultRetention
                                 (Mode + Years or Days, as the manifest wrote it)
    versioning                   Get/PutBucketVersioning Status
    encryption{kmsKeyAlias}      Get/PutBucketEncryption aws:kms + key ARN ↔ alias (KMS aliases)
    publicAccess                 Get/PutPublicAccessBlock: blocked ⇔ all four flags true
    accessLogging{targetBucket, prefix}
                                 Get/PutBucketLogging LoggingEnabled
    readers                      Get/PutBucketPolicy: AWS principals of every Allow statement
                                 that grants s3:GetObject (recon writes one, Sid ReconReaders)
    tags                         Get/PutBucketTagging TagSet (aws:* tags are AWS's, skipped)
    encryption.createKey, metadataExport
                                 instructions to recon, not bucket state: observe echoes the
                                 declared value so they never show as drift

Called by: reconciler.providers.aws.buckets.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.durations import Duration
from reconciler.providers.base import Attributes

DENY_SID = "ReconDenyInsecureTransport"
READERS_SID = "ReconReaders"
LOG_DELIVERY_SID = "ReconLogDelivery"
LOGGING_SERVICE = "logging.s3.amazonaws.com"
READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"]
_GRANTS_GET_OBJECT = frozenset({"s3:GetObject", "s3:Get*", "s3:*", "*"})
PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def partition(region: str) -> str:
    """The AWS partition of `region` (aws, aws-cn, aws-us-gov)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def bucket_arn(bucket: str, region: str) -> str:
    return f"arn:{partition(region)}:s3:::{bucket}"


def region_from_location(constraint: str | None) -> str:
    """GetBucketLocation's LocationConstraint as a region name."""
    if not constraint:
        return "us-east-1"
    if constraint == "EU":
        return "eu-west-1"
    return constraint


def canonical_retention(text: str) -> str:
    """`text` as Duration prints it (07y → 7y); unreadable text is kept as written."""
    try:
        return str(Duration.parse(str(text)))
    except ValueError:
        return str(text)


def retention_to_api(text: str) -> dict[str, int]:
    """A manifest retention as S3 DefaultRetention fields: 7y → Years 7, 2555d → Days 2555
    (other units, which the manifest model refuses, → whole days rounded up). Never both."""
    duration = Duration.parse(str(text))
    if duration.unit == "y":
        return {"Years": duration.value}
    if duration.unit == "d":
        return {"Days": duration.value}
    return {"Days": duration.whole_days}


def retention_from_api(default: Mapping[str, Any]) -> str | None:
    """DefaultRetention's Years/Days as the manifest writes them. A zero beside the other
    (moto reads back `Days: 0` beside `Years`) is absent; None when neither is set."""
    years = int(default.get("Years") or 0)
    days = int(default.get("Days") or 0)
    if years and not days:
        return f"{years}y"
    if days:
        return f"{days}d"
    return None


def lock_to_api(lock: Mapping[str, Any]) -> dict[str, Any]:
    """The PutObjectLockConfiguration body for manifest `objectLock`."""
    default = {"Mode": str(lock["mode"]), **retention_to_api(str(lock["defaultRetention"]))}
    return {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": default}}


def lock_from_api(configuration: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Manifest `objectLock` from GetObjectLockConfiguration; None when lock is off or has
    no default rule (recon declares lock only with a mode and a retention)."""
    if not configuration or configuration.get("ObjectLockEnabled") != "Enabled":
        return None
    default = (configuration.get("Rule") or {}).get("DefaultRetention") or {}
    retention = retention_from_api(default)
    if not default.get("Mode") or retention is None:
        return None
    return {"mode": str(default["Mode"]), "defaultRetention": retention}


def lock_enabled(configuration: Mapping[str, Any] | None) -> bool:
    return bool(configuration) and (configuration or {}).get("ObjectLockEnabled") == "Enabled"


def kms_key_from_encryption(configuration: Mapping[str, Any] | None) -> str | None:
    """The KMS key id/ARN/alias of an SSE-KMS default encryption rule, else None."""
    for rule in (configuration or {}).get("Rules") or []:
        default = rule.get("ApplyServerSideEncryptionByDefault") or {}
        if str(default.get("SSEAlgorithm", "")).startswith("aws:kms") and default.get("KMSMasterKeyID"):
            return str(default["KMSMasterKeyID"])
    return None


def encryption_to_api(key_arn: str) -> dict[str, Any]:
    return {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
                "BucketKeyEnabled": True,
            }
        ]
    }


def public_access_from_api(configuration: Mapping[str, Any] | None) -> str:
    """blocked when all four flags are on, allowed otherwise (including no configuration)."""
    flags = configuration or {}
    return "blocked" if all(flags.get(flag) is True for flag in PAB_FLAGS) else "allowed"


def public_access_to_api(value: str) -> dict[str, bool]:
    return dict.fromkeys(PAB_FLAGS, value == "blocked")


def logging_from_api(status: Mapping[str, Any] | None) -> dict[str, str] | None:
    enabled = (status or {}).get("LoggingEnabled")
    if not enabled or not enabled.get("TargetBucket"):
        return None
    return {"targetBucket": str(enabled["TargetBucket"]), "prefix": str(enabled.get("TargetPrefix") or "")}


def logging_to_api(logging: Mapping[str, Any] | None) -> dict[str, Any]:
    if not logging:
        return {}
    return {
        "LoggingEnabled": {
            "TargetBucket": str(logging["targetBucket"]),
            "TargetPrefix": str(logging.get("prefix") or ""),
        }
    }


def tags_from_api(tag_set: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """TagSet as a dict; aws:* tags belong to AWS services and are not recon's to manage."""
    return {str(t["Key"]): str(t.get("Value", "")) for t in tag_set or [] if not str(t["Key"]).startswith("aws:")}


def tags_to_api(tags: Mapping[str, Any]) -> dict[str, Any]:
    return {"TagSet": [{"Key": str(key), "Value": str(value)} for key, value in sorted(tags.items())]}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _grants_read(statement: Mapping[str, Any]) -> bool:
    return statement.get("Effect") == "Allow" and any(
        str(action) in _GRANTS_GET_OBJECT for action in _as_list(statement.get("Action"))
    )


def _aws_principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [str(p) for p in _as_list(principal.get("AWS"))]
    return []


def parse_policy(text: str | None) -> list[dict[str, Any]]:
    """The statements of a bucket policy document ([] when none or unreadable)."""
    if not text:
        return []
    try:
        document = json.loads(text)
    except ValueError:
        return []
    statements = document.get("Statement") if isinstance(document, dict) else None
    return [s for s in _as_list(statements) if isinstance(s, dict)]


def readers_from_policy(text: str | None) -> list[str]:
    """Every AWS principal any Allow statement grants s3:GetObject, sorted, once each
    (a foreign grant shows up as an extra reader, so "nobody else can read" is checked)."""
    found = {p for s in parse_policy(text) if _grants_read(s) for p in _aws_principals(s)}
    return sorted(found)


def archive_policy(
    bucket: str, region: str, readers: Iterable[str], current: str | None, *, deny_insecure: bool = True
) -> str | None:
    """The bucket policy recon wants: deny any request not over TLS (unless `deny_insecure`
    is off, for emulators that cannot evaluate the condition), allow exactly `readers` to
    read (no Allow statement when there are none). Statements of `current` that grant
    nobody read access and are not recon's (a log-delivery grant, an organisation's deny)
    are kept; every other read grant is dropped. None when no statement is left (S3 refuses
    an empty policy: delete it instead)."""
    arn = bucket_arn(bucket, region)
    kept = [
        s
        for s in parse_policy(current)
        if s.get("Sid") not in (DENY_SID, READERS_SID) and not (_grants_read(s) and _aws_principals(s))
    ]
    statements: list[dict[str, Any]] = []
    if deny_insecure:
        statements.append(
            {
                "Sid": DENY_SID,
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        )
    principals = sorted(set(readers))
    if principals:
        statements.append(
            {
                "Sid": READERS_SID,
                "Effect": "Allow",
                "Principal": {"AWS": principals},
                "Action": list(READ_ACTIONS),
                "Resource": [arn, f"{arn}/*"],
            }
        )
    if not kept + statements:
        return None
    return json.dumps({"Version": "2012-10-17", "Statement": kept + statements})


def log_delivery_policy(target: str, region: str, source_arn: str, current: str | None) -> str | None:
    """`current` (the log bucket's policy) with the S3 logging service allowed to write into
    `target` for `source_arn`; None when it already is."""
    statements = parse_policy(current)
    for statement in statements:
        if statement.get("Sid") == LOG_DELIVERY_SID:
            sources = _as_list(((statement.get("Condition") or {}).get("ArnLike") or {}).get("aws:SourceArn"))
            if source_arn in sources:
                return None
            statement.setdefault("Condition", {}).setdefault("ArnLike", {})["aws:SourceArn"] = sorted(
                {*map(str, sources), source_arn}
            )
            return json.dumps({"Version": "2012-10-17", "Statement": statements})
    statements.append(
        {
            "Sid": LOG_DELIVERY_SID,
            "Effect": "Allow",
            "Principal": {"Service": LOGGING_SERVICE},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn(target, region)}/*",
            "Condition": {"ArnLike": {"aws:SourceArn": [source_arn]}},
        }
    )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def normalise(attributes: Attributes) -> Attributes:
    """Canonical ArchiveBucket attributes: retention as Duration prints it (units kept: 7y
    and 2555d are different S3 settings), readers sorted once each, tags as strings."""
    result = copy.deepcopy(dict(attributes))
    lock = result.get("objectLock")
    if isinstance(lock, dict) and lock.get("defaultRetention") is not None:
        lock["defaultRetention"] = canonical_retention(str(lock["defaultRetention"]))
    if isinstance(result.get("readers"), list):
        result["readers"] = sorted({str(r) for r in result["readers"]})
    if isinstance(result.get("tags"), dict):
        result["tags"] = {str(k): str(v) for k, v in result["tags"].items()}
    return result
