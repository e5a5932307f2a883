"""ArchiveBucketProvider against a real moto S3+KMS server over HTTP (loopback, OS port).

moto accepts some writes S3 in COMPLIANCE mode refuses (see REFERENCES §2), so these tests
check what recon sends and reads back; the safety table itself is tested purely in
test_aws_bucket_safety.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from moto_http import moto_server

from reconciler.providers.aws import (
    ArchiveBucketProvider,
    ArchiveRefusedError,
    AwsClient,
    AwsConfig,
    KmsAliasMissingError,
    aws_providers,
)
from reconciler.providers.aws.bucket_shape import LOG_DELIVERY_SID, LOGGING_SERVICE
from reconciler.providers.base import Attributes, ExpandContext, ResourceRef

REGION = "eu-west-1"
READER_A = "arn:aws:iam::123456789012:role/compliance-reviewer"
READER_B = "arn:aws:iam::123456789012:user/auditor"
_names = itertools.count()


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def client(moto_url: str) -> Iterator[AwsClient]:
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    aws = AwsClient(
        AwsConfig(region=REGION, endpoint_url=moto_url, access_key_id="testing", secret_access_key="testing")
    )
    yield aws
    asyncio.run(aws.aclose())


@pytest.fixture
def sandbox_client(moto_url: str, client: AwsClient) -> Iterator[AwsClient]:
    """A client configured like the sandbox: no TLS-only Deny, which moto cannot evaluate
    (it ignores the condition and would refuse every PutObject)."""
    aws = AwsClient(
        AwsConfig(
            region=REGION,
            endpoint_url=moto_url,
            access_key_id="testing",
            secret_access_key="testing",
            deny_insecure_transport=False,
        )
    )
    yield aws
    asyncio.run(aws.aclose())


@pytest.fixture
def provider(client: AwsClient) -> ArchiveBucketProvider:
    return ArchiveBucketProvider(client)


def unique(prefix: str = "rec") -> str:
    return f"{prefix}-archive-{next(_names):04d}"


def spec(bucket: str, **changes: Any) -> Attributes:
    """A full ArchiveBucket spec as the engine passes it (model_dump by alias, + expand)."""
    attributes: Attributes = {
        "bucketName": bucket,
        "region": REGION,
        "objectLock": {"mode": "COMPLIANCE", "defaultRetention": "7y"},
        "encryption": {"kmsKeyAlias": f"alias/{bucket}", "createKey": True},
        "publicAccess": "blocked",
        "accessLogging": {"targetBucket": f"{bucket}-logs", "prefix": "access/"},
        "readers": [READER_B, READER_A],
        "metadataExport": True,
        "tags": {"desk": "eu-power", "regime": "mifid2"},
        "versioning": "Enabled",
    }
    attributes.update(changes)
    return attributes


def desired(provider: ArchiveBucketProvider, name: str, attributes: Attributes) -> Attributes:
    """What the engine compares: expand (remembers the intent) then normalise."""
    plain = {k: v for k, v in attributes.items() if k != "versioning"}
    expanded = asyncio.run(provider.expand({name: plain}, ExpandContext({}, {})))
    return provider.normalise(expanded[name])


def observe(provider: ArchiveBucketProvider, name: str, bucket: str | None = None) -> Attributes | None:
    found = asyncio.run(provider.observe_all([ResourceRef("ArchiveBucket", name, bucket)]))
    item = found.get(f"ArchiveBucket/{name}")
    return None if item is None else provider.normalise(item.attributes)


def without_nulls(attributes: Attributes | None) -> Attributes:
    return {k: v for k, v in (attributes or {}).items() if v is not None}


def s3(client: AwsClient) -> Any:
    return client.s3(REGION)


def test_create_full_bucket_observes_equal_to_desired(provider: ArchiveBucketProvider, client: AwsClient) -> None:
    bucket = unique()
    want = desired(provider, "eu-power", spec(bucket))
    created = asyncio.run(provider.create("eu-power", spec(bucket)))
    assert created.id == bucket
    seen = observe(provider, "eu-power", bucket)
    assert without_nulls(seen) == without_nulls(want)
    for key in want:
        assert without_nulls(seen).get(key) == want[key], key
    raw = s3(client)
    lock = raw.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    assert lock["Rule"]["DefaultRetention"]["Years"] == 7
    policy = json.loads(raw.get_bucket_policy(Bucket=bucket)["Policy"])
    deny = next(s for s in policy["Statement"] if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allow = next(s for s in policy["Statement"] if s["Effect"] == "Allow")
    assert sorted(allow["Principal"]["AWS"]) == sorted([READER_A, READER_B])
    assert set(allow["Action"]) == {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"}


def test_create_is_idempotent(provider: ArchiveBucketProvider, client: AwsClient) -> None:
    bucket = unique()
    first = asyncio.run(provider.create("a", spec(bucket)))
    before = client.requests
    second = asyncio.run(provider.create("a", spec(bucket)))
    assert second.attributes == first.attributes
    assert client.requests - before == 2 * (8 + 1)  # two reads (8 GETs + ListAliases), no write
    assert len(s3(client).list_buckets()["Buckets"]) == 2  # the archive and its log bucket
    create_again = s3(client).create_bucket
    with pytest.raises(Exception, match="BucketAlreadyOwnedByYou"):
        create_again(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})


@pytest.mark.parametrize("retention", ["7y", "2555d", "1d", "10y"])
def test_retention_reads_back_as_written(provider: ArchiveBucketProvider, retention: str) -> None:
    bucket = unique()
    attributes = spec(bucket, objectLock={"mode": "GOVERNANCE", "defaultRetention": retention})
    want = desired(provider, "r", attributes)
    asyncio.run(provider.create("r", attributes))
    seen = observe(provider, "r", bucket)
    assert seen is not None
    assert seen["objectLock"] == {"mode": "GOVERNANCE", "defaultRetention": retention}
    assert without_nulls(seen) == without_nulls(want)


def test_minimal_bucket_has_no_diff(provider: ArchiveBucketProvider) -> None:
    bucket = unique()
    attributes = spec(bucket, objectLock=None, encryption=None, accessLogging=None, readers=[], tags={})
    attributes["metadataExport"] = False
    asyncio.run(provider.create("m", attributes))
    seen = observe(provider, "m", bucket)
    assert without_nulls(seen) == without_nulls(desired(provider, "m", attributes))
    assert seen is not None and seen["readers"] == [] and seen["tags"] == {}


def test_observe_missing_bucket_is_absent(provider: ArchiveBucketProvider) -> None:
    assert asyncio.run(provider.observe_all([ResourceRef("ArchiveBucket", "gone", "no-such-bucket-here")])) == {}
    assert asyncio.run(provider.observe_all([])) == {}


def test_observe_finds_bucket_by_declared_name(provider: ArchiveBucketProvider) -> None:
    bucket = unique()
    asyncio.run(provider.create("by-name", spec(bucket)))
    desired(provider, "by-name", spec(bucket))  # expand remembers bucketName
    found = asyncio.run(provider.observe_all([ResourceRef("ArchiveBucket", "by-name")]))
    assert found["ArchiveBucket/by-name"].id == bucket


def test_observe_lists_kms_aliases_once_per_pass(provider: ArchiveBucketProvider, client: AwsClient) -> None:
    buckets = [unique() for _ in range(5)]
    for index, bucket in enumerate(buckets):
        asyncio.run(provider.create(f"b{index}", spec(bucket, accessLogging=None)))
    listings = provider.alias_listings
    refs = [ResourceRef("ArchiveBucket", f"b{i}", b) for i, b in enumerate(buckets)]
    found = asyncio.run(provider.observe_all(refs))
    assert len(found) == 5
    assert provider.alias_listings - listings == 1
    assert {o.attributes["encryption"]["kmsKeyAlias"] for o in found.values()} == {f"alias/{b}" for b in buckets}


UPDATES: list[tuple[str, dict[str, Any]]] = [
    ("objectLock", {"objectLock": {"mode": "COMPLIANCE", "defaultRetention": "10y"}}),
    ("encryption", {"encryption": {"kmsKeyAlias": "alias/other-key", "createKey": True}}),
    ("publicAccess", {"publicAccess": "allowed"}),
    ("accessLogging", {"accessLogging": {"targetBucket": "rec-other-logs", "prefix": "s3/"}}),
    ("readers", {"readers": [READER_A]}),
    ("readers-none", {"readers": []}),
    ("tags", {"tags": {"desk": "us-fx"}}),
    ("tags-none", {"tags": {}}),
    ("logging-off", {"accessLogging": None}),
    ("encryption-off", {"encryption": None}),
]


@pytest.mark.parametrize(("label", "change"), UPDATES, ids=[label for label, _ in UPDATES])
def test_update_converges_one_attribute(
    provider: ArchiveBucketProvider, client: AwsClient, label: str, change: dict[str, Any]
) -> None:
    bucket = unique()
    asyncio.run(provider.create("u", spec(bucket)))
    target = spec(bucket, **change)
    want = desired(provider, "u", target)
    updated = asyncio.run(provider.update(ResourceRef("ArchiveBucket", "u", bucket), target))
    assert without_nulls(provider.normalise(updated.attributes)) == without_nulls(want)
    assert without_nulls(observe(provider, "u", bucket)) == without_nulls(want)


def test_update_touches_only_what_differs(provider: ArchiveBucketProvider, client: AwsClient) -> None:
    bucket = unique()
    asyncio.run(provider.create("t", spec(bucket)))
    before = client.requests
    asyncio.run(provider.update(ResourceRef("ArchiveBucket", "t", bucket), spec(bucket, tags={"desk": "x"})))
    assert client.requests - before == (8 + 1) + 1 + (8 + 1)  # read, PutBucketTagging, read back


def test_update_refuses_forbidden_change_and_sends_nothing(provider: ArchiveBucketProvider, client: AwsClient) -> None:
    bucket = unique()
    asyncio.run(provider.create("f", spec(bucket, tags={})))
    shorter = spec(bucket, objectLock={"mode": "GOVERNANCE", "defaultRetention": "1y"}, tags={"x": "y"})
    with pytest.raises(ArchiveRefusedError, match="COMPLIANCE") as caught:
        asyncio.run(provider.update(ResourceRef("ArchiveBucket", "f", bucket), shorter))
    assert "shortened" in str(caught.value)
    seen = observe(provider, "f", bucket)
    assert seen is not None
    assert seen["objectLock"] == {"mode": "COMPLIANCE", "defaultRetention": "7y"}
    assert seen["tags"] == {}  # nothing at all was sent


def test_create_over_existing_locked_bucket_refuses_to_shorten(provider: ArchiveBucketProvider) -> None:
    bucket = unique()
    asyncio.run(provider.create("c", spec(bucket)))
    with pytest.raises(ArchiveRefusedError, match="cannot be shortened"):
        asyncio.run(provider.create("c", spec(bucket, objectLock={"mode": "COMPLIANCE", "defaultRetention": "5y"})))


def test_missing_kms_alias_without_create_key_names_it(provider: ArchiveBucketProvider) -> None:
    bucket = unique()
    attributes = spec(bucket, encryption={"kmsKeyAlias": "alias/not-there", "createKey": False})
    with pytest.raises(KmsAliasMissingError) as caught:
        asyncio.run(provider.create("k", attributes))
    text = str(caught.value)
    assert "alias/not-there" in text and "createKey" in text and REGION in text


def test_existing_alias_is_used_without_create_key(provider: ArchiveBucketProvider, client: AwsClient) -> None:
    kms = client.kms(REGION)
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/shared-recordings", TargetKeyId=key["KeyId"])
    bucket = unique()
    attributes = spec(bucket, encryption={"kmsKeyAlias": "alias/shared-recordings", "createKey": False})
    asyncio.run(provider.create("e", attributes))
    rules = s3(client).get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key["Arn"]
    assert len(kms.list_keys()["Keys"]) == 1


def test_create_key_creates_key_and_alias(provider: ArchiveBucketProvider, client: AwsClient) -> None:
    bucket = unique()
    asyncio.run(provider.create("n", spec(bucket)))
    aliases = {a["AliasName"]: a for a in client.kms(REGION).list_aliases()["Aliases"]}
    assert f"alias/{bucket}" in aliases
    key_id = aliases[f"alias/{bucket}"]["TargetKeyId"]
    rules = s3(client).get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"].endswith(key_id)


def test_log_bucket_is_created_and_prepared(provider: ArchiveBucketProvider, client: AwsClient) -> None:
    bucket = unique()
    asyncio.run(provider.create("l", spec(bucket)))
    raw = s3(client)
    log_bucket = f"{bucket}-logs"
    assert raw.get_bucket_location(Bucket=log_bucket)["LocationConstraint"] == REGION
    flags = raw.get_public_access_block(Bucket=log_bucket)["PublicAccessBlockConfiguration"]
    assert all(flags.values())
    grant = next(s for s in json.loads(raw.get_bucket_policy(Bucket=log_bucket)["Policy"])["Statement"])
    assert grant["Sid"] == LOG_DELIVERY_SID
    assert grant["Principal"] == {"Service": LOGGING_SERVICE}
    assert grant["Condition"]["ArnLike"]["aws:SourceArn"] == [f"arn:aws:s3:::{bucket}"]
    assert raw.get_bucket_logging(Bucket=bucket)["LoggingEnabled"] == {
        "TargetBucket": log_bucket,
        "TargetPrefix": "access/",
    }


def test_existing_log_bucket_keeps_its_policy_and_gains_the_grant(
    provider: ArchiveBucketProvider, client: AwsClient
) -> None:
    raw = s3(client)
    log_bucket = unique("shared")
    raw.create_bucket(Bucket=log_bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    other = {"Sid": "OrgDeny", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:DeleteBucket"}
    other["Resource"] = f"arn:aws:s3:::{log_bucket}"
    raw.put_bucket_policy(Bucket=log_bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [other]}))
    first, second = unique(), unique()
    for name, bucket in (("one", first), ("two", second)):
        asyncio.run(provider.create(name, spec(bucket, accessLogging={"targetBucket": log_bucket, "prefix": ""})))
    statements = json.loads(raw.get_bucket_policy(Bucket=log_bucket)["Policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["OrgDeny", LOG_DELIVERY_SID]
    assert statements[1]["Condition"]["ArnLike"]["aws:SourceArn"] == sorted(
        [f"arn:aws:s3:::{first}", f"arn:aws:s3:::{second}"]
    )


def test_foreign_read_grant_shows_as_reader_and_update_removes_it(
    provider: ArchiveBucketProvider, client: AwsClient
) -> None:
    bucket = unique()
    asyncio.run(provider.create("g", spec(bucket)))
    raw = s3(client)
    policy = json.loads(raw.get_bucket_policy(Bucket=bucket)["Policy"])
    policy["Statement"].append(
        {
            "Sid": "Sneaky",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
    )
    raw.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    seen = observe(provider, "g", bucket)
    assert seen is not None and "arn:aws:iam::999999999999:root" in seen["readers"]
    asyncio.run(provider.update(ResourceRef("ArchiveBucket", "g", bucket), spec(bucket)))
    seen = observe(provider, "g", bucket)
    assert seen is not None and seen["readers"] == sorted([READER_A, READER_B])


def test_suspended_versioning_shows_as_drift_and_update_refuses(
    provider: ArchiveBucketProvider, client: AwsClient
) -> None:
    bucket = unique()
    asyncio.run(provider.create("v", spec(bucket)))
    s3(client).put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})  # moto allows it
    seen = observe(provider, "v", bucket)
    assert seen is not None and seen["versioning"] == "Suspended"
    updated = asyncio.run(provider.update(ResourceRef("ArchiveBucket", "v", bucket), spec(bucket)))
    assert updated.attributes["versioning"] == "Enabled"


def put_locked_object(client: AwsClient, bucket: str) -> None:
    s3(client).put_object(Bucket=bucket, Key="2026/01/02/call.opus", Body=b"recording")


def test_delete_refuses_bucket_with_locked_version(sandbox_client: AwsClient) -> None:
    provider, client = ArchiveBucketProvider(sandbox_client), sandbox_client
    bucket = unique()
    asyncio.run(provider.create("d", spec(bucket, objectLock={"mode": "COMPLIANCE", "defaultRetention": "1d"})))
    put_locked_object(client, bucket)
    with pytest.raises(ArchiveRefusedError, match="locked in COMPLIANCE mode") as caught:
        asyncio.run(provider.delete(ResourceRef("ArchiveBucket", "d", bucket)))
    assert "2026/01/02/call.opus" in str(caught.value)
    assert observe(provider, "d", bucket) is not None


def test_delete_unlocked_bucket_with_versions_and_when_gone(sandbox_client: AwsClient) -> None:
    provider, client = ArchiveBucketProvider(sandbox_client), sandbox_client
    bucket = unique()
    asyncio.run(provider.create("d", spec(bucket, objectLock=None, accessLogging=None)))
    put_locked_object(client, bucket)
    put_locked_object(client, bucket)
    asyncio.run(provider.delete(ResourceRef("ArchiveBucket", "d", bucket)))
    assert observe(provider, "d", bucket) is None
    asyncio.run(provider.delete(ResourceRef("ArchiveBucket", "d", bucket)))  # already gone: success


def test_delete_refused_by_s3_reports_the_version(sandbox_client: AwsClient) -> None:
    """Retention over by recon's clock, but S3 still holds the version: the refusal is reported."""
    later = ArchiveBucketProvider(sandbox_client, clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
    bucket = unique()
    asyncio.run(later.create("d", spec(bucket, objectLock={"mode": "GOVERNANCE", "defaultRetention": "1d"})))
    put_locked_object(sandbox_client, bucket)
    with pytest.raises(ArchiveRefusedError, match="could not be deleted"):
        asyncio.run(later.delete(ResourceRef("ArchiveBucket", "d", bucket)))


def test_sandbox_policy_has_no_tls_deny_and_no_empty_policy(sandbox_client: AwsClient) -> None:
    provider = ArchiveBucketProvider(sandbox_client)
    with_readers, without = unique(), unique()
    asyncio.run(provider.create("w", spec(with_readers, accessLogging=None)))
    asyncio.run(provider.create("n", spec(without, accessLogging=None, readers=[])))
    statements = json.loads(s3(sandbox_client).get_bucket_policy(Bucket=with_readers)["Policy"])["Statement"]
    assert [s["Effect"] for s in statements] == ["Allow"]
    with pytest.raises(Exception, match="NoSuchBucketPolicy"):
        s3(sandbox_client).get_bucket_policy(Bucket=without)


def test_aws_providers_set(moto_url: str) -> None:
    config = AwsConfig(region=REGION, endpoint_url=moto_url, access_key_id="testing", secret_access_key="testing")
    providers = aws_providers(config)
    assert providers.kinds() == ["ArchiveBucket"]
    assert providers.request_counter is not None and providers.request_counter() == 0
    assert "testing" not in repr(config)
    asyncio.run(providers.aclose())
    asyncio.run(providers.aclose())
