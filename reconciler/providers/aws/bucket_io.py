"""Synchronous S3 reads and writes for one archive bucket, run in the client's thread pool.

`read_bucket` reads everything recon manages on a bucket (8 GETs, in sequence, on one pool
thread; observe runs up to `AwsConfig.concurrency` buckets at once). `converge` writes only
the configurations whose attributes differ, in the order S3 needs (versioning before Object
Lock; the log bucket prepared before logging is turned on). `locked_versions` finds object
versions still under retention or legal hold, so a delete can be refused.

Called by: reconciler.providers.aws.buckets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.providers.aws import bucket_shape as shape
from reconciler.providers.aws.client import AwsClient
from reconciler.providers.aws.errors import BucketNotFoundError
from reconciler.providers.aws.kms import AliasIndex, resolve_key
from reconciler.providers.base import Attributes

call = AwsClient.call


@dataclass(frozen=True, slots=True)
class LiveBucket:
    """What one read of a bucket found: manifest-shape attributes plus the raw policy text
    (to keep statements recon does not own) and whether Object Lock is on at all."""

    attributes: Attributes
    policy: str | None
    lock_enabled: bool


def _intent_value(intent: Mapping[str, Any], *path: str) -> Any:
    value: Any = intent
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def read_bucket(client: AwsClient, bucket: str, intent: Mapping[str, Any], aliases: AliasIndex) -> LiveBucket | None:
    """Everything recon manages on `bucket`, or None when it does not exist. `intent` is what
    the manifest (or the last apply) declared: only the instructions that are not bucket state
    (createKey, metadataExport) and the preferred alias are taken from it."""
    try:
        return _read(client, bucket, intent, aliases)
    except BucketNotFoundError:  # deleted between two reads
        return None


def _read(client: AwsClient, bucket: str, intent: Mapping[str, Any], aliases: AliasIndex) -> LiveBucket | None:
    location = call(client.s3(), "get_bucket_location", bucket=bucket, absent=("NoSuchBucket",), Bucket=bucket)
    if location is None:
        return None
    region = shape.region_from_location(location.get("LocationConstraint"))
    s3 = client.s3(region)
    lock = call(
        s3,
        "get_object_lock_configuration",
        bucket=bucket,
        absent=("ObjectLockConfigurationNotFoundError",),
        Bucket=bucket,
    )
    versioning = call(s3, "get_bucket_versioning", bucket=bucket, Bucket=bucket)
    encryption = call(
        s3,
        "get_bucket_encryption",
        bucket=bucket,
        absent=("ServerSideEncryptionConfigurationNotFoundError",),
        Bucket=bucket,
    )
    access = call(
        s3, "get_public_access_block", bucket=bucket, absent=("NoSuchPublicAccessBlockConfiguration",), Bucket=bucket
    )
    policy = call(s3, "get_bucket_policy", bucket=bucket, absent=("NoSuchBucketPolicy",), Bucket=bucket)
    logging = call(s3, "get_bucket_logging", bucket=bucket, Bucket=bucket)
    tagging = call(s3, "get_bucket_tagging", bucket=bucket, absent=("NoSuchTagSet",), Bucket=bucket)

    lock_configuration = (lock or {}).get("ObjectLockConfiguration")
    policy_text = (policy or {}).get("Policy")
    attributes: Attributes = {
        "bucketName": bucket,
        "region": region,
        "objectLock": shape.lock_from_api(lock_configuration),
        "versioning": (versioning or {}).get("Status"),
        "encryption": None,
        "publicAccess": shape.public_access_from_api((access or {}).get("PublicAccessBlockConfiguration")),
        "accessLogging": shape.logging_from_api(logging),
        "readers": shape.readers_from_policy(policy_text),
        "metadataExport": bool(intent.get("metadataExport", False)),
        "tags": shape.tags_from_api((tagging or {}).get("TagSet")),
    }
    key = shape.kms_key_from_encryption((encryption or {}).get("ServerSideEncryptionConfiguration"))
    if key is not None:
        wanted_alias = _intent_value(intent, "encryption", "kmsKeyAlias")
        attributes["encryption"] = {
            "kmsKeyAlias": aliases.alias_for(region, key, wanted_alias),
            "createKey": bool(_intent_value(intent, "encryption", "createKey")),
        }
    return LiveBucket(attributes, policy_text, shape.lock_enabled(lock_configuration))


def create_bucket(client: AwsClient, bucket: str, region: str, *, object_lock: bool) -> None:
    """CreateBucket in `region` (Object Lock enabled when asked); already owning it is fine."""
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    if object_lock:
        kwargs["ObjectLockEnabledForBucket"] = True
    call(client.s3(region), "create_bucket", bucket=bucket, absent=("BucketAlreadyOwnedByYou",), **kwargs)


def converge(client: AwsClient, live: LiveBucket, desired: Attributes, *, log_source_arn: str) -> list[str]:
    """Write each configuration whose attribute differs between `live` and `desired` (both
    normalised); returns the attributes written, in order."""
    have = live.attributes
    bucket, region = str(have["bucketName"]), str(have["region"])
    s3 = client.s3(region)
    written: list[str] = []

    def differs(key: str) -> bool:
        return have.get(key) != desired.get(key)

    if (desired.get("versioning") == "Enabled" or desired.get("objectLock")) and have.get("versioning") != "Enabled":
        call(s3, "put_bucket_versioning", bucket=bucket, Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        written.append("versioning")
    if desired.get("objectLock") and differs("objectLock"):
        call(
            s3,
            "put_object_lock_configuration",
            bucket=bucket,
            Bucket=bucket,
            ObjectLockConfiguration=shape.lock_to_api(desired["objectLock"]),
        )
        written.append("objectLock")
    want_key = _intent_value(desired, "encryption", "kmsKeyAlias")
    if want_key != _intent_value(have, "encryption", "kmsKeyAlias"):
        if want_key:
            create = bool(_intent_value(desired, "encryption", "createKey"))
            arn = resolve_key(client, region, str(want_key), create=create, bucket=bucket)
            call(
                s3,
                "put_bucket_encryption",
                bucket=bucket,
                Bucket=bucket,
                ServerSideEncryptionConfiguration=shape.encryption_to_api(arn),
            )
        else:
            call(s3, "delete_bucket_encryption", bucket=bucket, Bucket=bucket)
        written.append("encryption")
    if differs("publicAccess"):
        call(
            s3,
            "put_public_access_block",
            bucket=bucket,
            Bucket=bucket,
            PublicAccessBlockConfiguration=shape.public_access_to_api(str(desired.get("publicAccess", "blocked"))),
        )
        written.append("publicAccess")
    deny = client.config.deny_insecure_transport
    has_deny = any(s.get("Sid") == shape.DENY_SID for s in shape.parse_policy(live.policy))
    if differs("readers") or has_deny != deny:
        policy = shape.archive_policy(bucket, region, desired.get("readers") or [], live.policy, deny_insecure=deny)
        if policy is None:
            call(s3, "delete_bucket_policy", bucket=bucket, absent=("NoSuchBucketPolicy",), Bucket=bucket)
        else:
            call(s3, "put_bucket_policy", bucket=bucket, Bucket=bucket, Policy=policy)
        written.append("readers")
    if differs("accessLogging"):
        logging = desired.get("accessLogging")
        if logging:
            prepare_log_bucket(client, str(logging["targetBucket"]), region, log_source_arn)
        call(s3, "put_bucket_logging", bucket=bucket, Bucket=bucket, BucketLoggingStatus=shape.logging_to_api(logging))
        written.append("accessLogging")
    if differs("tags"):
        tags = desired.get("tags") or {}
        if tags:
            call(s3, "put_bucket_tagging", bucket=bucket, Bucket=bucket, Tagging=shape.tags_to_api(tags))
        else:
            call(s3, "delete_bucket_tagging", bucket=bucket, Bucket=bucket)
        written.append("tags")
    return written


def prepare_log_bucket(client: AwsClient, target: str, region: str, source_arn: str) -> None:
    """Make `target` ready to receive server access logs from `source_arn`: create it (public
    access blocked) when missing, and grant the S3 logging service s3:PutObject in its policy."""
    s3 = client.s3(region)
    if call(s3, "get_bucket_location", bucket=target, absent=("NoSuchBucket",), Bucket=target) is None:
        create_bucket(client, target, region, object_lock=False)
        call(
            s3,
            "put_public_access_block",
            bucket=target,
            Bucket=target,
            PublicAccessBlockConfiguration=shape.public_access_to_api("blocked"),
        )
    current = call(s3, "get_bucket_policy", bucket=target, absent=("NoSuchBucketPolicy",), Bucket=target)
    policy = shape.log_delivery_policy(target, region, source_arn, (current or {}).get("Policy"))
    if policy is not None:
        call(s3, "put_bucket_policy", bucket=target, Bucket=target, Policy=policy)


def _versions(s3: Any, bucket: str) -> Iterator[tuple[str, str, bool]]:
    """(key, version id, is delete marker) for every version in `bucket`."""
    params: dict[str, Any] = {"Bucket": bucket}
    while True:
        page = call(s3, "list_object_versions", bucket=bucket, **params)
        for version in page.get("Versions") or []:
            yield str(version["Key"]), str(version["VersionId"]), False
        for marker in page.get("DeleteMarkers") or []:
            yield str(marker["Key"]), str(marker["VersionId"]), True
        if not page.get("IsTruncated"):
            return
        params = {"Bucket": bucket, "KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}


def locked_version(s3: Any, bucket: str, versions: list[tuple[str, str, bool]], now: dt.datetime) -> str | None:
    """A description of the first version still under retention or legal hold, else None."""
    for key, version, is_marker in versions:
        if is_marker:
            continue
        head = call(s3, "head_object", bucket=bucket, Bucket=bucket, Key=key, VersionId=version)
        if head.get("ObjectLockLegalHoldStatus") == "ON":
            return f"{key} (version {version}) is under legal hold"
        until = head.get("ObjectLockRetainUntilDate")
        if isinstance(until, dt.datetime) and until > now:
            mode = head.get("ObjectLockMode", "retention")
            return f"{key} (version {version}) is locked in {mode} mode until {until.date().isoformat()}"
    return None


def delete_bucket(client: AwsClient, bucket: str, now: dt.datetime) -> str | None:
    """Delete `bucket` and its versions unless a version is locked; returns why it was not
    deleted (a locked version, nothing deleted; or a version S3 refused to delete) or None
    (deleted, or already gone)."""
    location = call(client.s3(), "get_bucket_location", bucket=bucket, absent=("NoSuchBucket",), Bucket=bucket)
    if location is None:
        return None
    s3 = client.s3(shape.region_from_location(location.get("LocationConstraint")))
    versions = list(_versions(s3, bucket))
    locked = locked_version(s3, bucket, versions, now)
    if locked is not None:
        return locked
    for start in range(0, len(versions), 1000):
        batch = [{"Key": key, "VersionId": version} for key, version, _ in versions[start : start + 1000]]
        result = call(s3, "delete_objects", bucket=bucket, Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        errors = result.get("Errors") or []
        if errors:
            first = errors[0]
            return f"{first.get('Key')} (version {first.get('VersionId')}) could not be deleted: {first.get('Message')}"
    call(s3, "delete_bucket", bucket=bucket, absent=("NoSuchBucket",), Bucket=bucket)
    return None
