"""recon on the real enforcer: its own AWS provider against a real S3 Object Lock store (Ceph
RADOS Gateway 16.2, started by `make test-worm`).

Issue 5, item 6: every change recon classifies FORBIDDEN for an ArchiveBucket is
(a) classified FORBIDDEN, (b) refused by recon's provider with ArchiveRefusedError before any
write reaches the store (a botocore `before-call` hook on recon's own clients records every
operation it attempts; the bucket's live configuration, read with raw boto3, is unchanged), and
(c) answered by the store itself, sent raw with boto3: refused where S3 refuses it, and where
S3 semantics allow the bucket-level request the test records what RGW does and why recon still
forbids it. Legal holds set through recon's own code (object_holds) block deletion.

Measured RGW 16.2.15 facts these tests are built around (each asserted below or in
test_worm_store.py):

- GetBucketLocation answers the zonegroup name, `default`, never `us-east-1`; so the specs here
  declare `region: default`. (With `region: us-east-1`, recon's create makes the bucket and then
  refuses to converge it: "the bucket's region cannot change in place (default → us-east-1)".)
- No `encryption` (aws:kms is InvalidArgument 400) and no `accessLogging` (PutBucketLogging is
  MethodNotAllowed 405): left out of every spec.
- With the public access block's BlockPublicPolicy on, RGW answers AccessDenied 403 to EVERY
  PutBucketPolicy, even one that only grants one account's role, or only denies non-TLS
  requests. So `publicAccess: blocked` cannot be combined with `readers` (or with recon's
  TLS-only Deny statement: the provider runs with deny_insecure_transport=False); `readers` is
  round-tripped with `publicAccess: allowed` instead, and blocked+readers is a strict xfail.
- With BlockPublicAcls on, RGW answers AccessDenied 403 to the owner's own PutObject (no ACL
  header, or ACL=private; any bucket, locked or not). A `publicAccess: blocked` bucket is
  created and read back, but nothing can be uploaded into it; every bucket here that must hold
  a recording is declared `publicAccess: allowed` (WRITABLE).

Skipped unless RECON_WORM_ENDPOINT names an endpoint.json.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from worm_store import (
    Answer,
    CallRecorder,
    ObjectVersion,
    WormEndpoint,
    answer,
    endpoint_or_skip,
    new_lock_bucket,
    put_version,
    s3_client,
    unique_bucket_name,
    version_exists,
)

from reconciler.providers.archive_layout import conversation_prefix
from reconciler.providers.aws import (
    AccessDeniedError,
    ArchiveBucketProvider,
    ArchiveRefusedError,
    AwsClient,
    AwsConfig,
)
from reconciler.providers.aws.object_holds import ArchivedVersion, legal_hold_on, set_holds
from reconciler.providers.base import Action, Attributes, ExpandContext, ProposedChange, ResourceRef, Safety

pytestmark = pytest.mark.worm

REGION = "default"  # RGW's zonegroup: what GetBucketLocation answers (measured)
RETENTION = "2d"  # short: the store is throwaway, but keep locks small anyway
NAME = "eu-power"
READER = "arn:aws:iam::123456789012:role/compliance-reviewer"
WRITABLE = {"publicAccess": "allowed"}  # RGW 16.2 refuses PutObject under BlockPublicAcls (measured)
REFUSED = Answer("AccessDenied", 403)


@pytest.fixture(scope="module")
def worm_endpoint() -> WormEndpoint:
    return endpoint_or_skip()


@pytest.fixture(scope="module")
def raw(worm_endpoint: WormEndpoint) -> Any:
    """A plain boto3 client, not recon's: to read the truth and to send the raw requests."""
    return s3_client(worm_endpoint)


@pytest.fixture(scope="module")
def aws(worm_endpoint: WormEndpoint) -> Iterator[AwsClient]:
    client = AwsClient(
        AwsConfig(
            region=REGION,
            endpoint_url=worm_endpoint.url,
            access_key_id=worm_endpoint.access_key_id,
            secret_access_key=worm_endpoint.secret_access_key,
            # RGW refuses any bucket policy under BlockPublicPolicy, the Deny statement included.
            deny_insecure_transport=False,
            max_attempts=1,  # the store's first answer, no retries
        )
    )
    yield client
    asyncio.run(client.aclose())


@pytest.fixture
def provider(aws: AwsClient) -> ArchiveBucketProvider:
    return ArchiveBucketProvider(aws)


@pytest.fixture
def recorder(aws: AwsClient) -> CallRecorder:
    """Every S3/KMS operation recon's clients attempt (any region a case could reach)."""
    rec = CallRecorder()
    for region in (REGION, "us-east-1"):
        rec.watch(aws.s3(region))
    rec.watch(aws.kms(REGION))
    return rec


def spec(bucket: str, **changes: Any) -> Attributes:
    """An ArchiveBucket spec RGW can hold (manifest shape, by alias; no encryption, no logging)."""
    attributes: Attributes = {
        "bucketName": bucket,
        "region": REGION,
        "objectLock": {"mode": "COMPLIANCE", "defaultRetention": RETENTION},
        "publicAccess": "blocked",
        "readers": [],
        "metadataExport": True,
        "tags": {"desk": "eu-power", "regime": "mifid2"},
    }
    attributes.update(changes)
    return attributes


def expand(provider: ArchiveBucketProvider, attributes: Attributes, name: str = NAME) -> Attributes:
    """What the engine compares and hands to create/update: expand (adds versioning), normalised."""
    expanded = asyncio.run(provider.expand({name: attributes}, ExpandContext({}, {})))
    return provider.normalise(expanded[name])


def observe(provider: ArchiveBucketProvider, bucket: str, name: str = NAME) -> Attributes:
    found = asyncio.run(provider.observe_all([ResourceRef("ArchiveBucket", name, bucket)]))
    return provider.normalise(found[f"ArchiveBucket/{name}"].attributes)


def without_nulls(attributes: Attributes) -> Attributes:
    return {k: v for k, v in attributes.items() if v is not None}


# ---- 1. create a COMPLIANCE bucket, read it back: no perpetual diff ------------------------------

CREATE_SPECS = [
    pytest.param({}, id="compliance-publicAccess-blocked-tags"),
    pytest.param({"publicAccess": "allowed", "readers": [READER]}, id="compliance-readers-with-publicAccess-allowed"),
]


@pytest.mark.parametrize("changes", CREATE_SPECS)
def test_recon_creates_a_compliance_bucket_and_reads_it_back_equal(
    provider: ArchiveBucketProvider, recorder: CallRecorder, raw: Any, changes: dict[str, Any]
) -> None:
    bucket = unique_bucket_name("recon-worm-create")
    want = expand(provider, spec(bucket, **changes))
    created = asyncio.run(provider.create(NAME, want))
    assert created.id == bucket
    # The hook sees recon's writes (the positive control for the "no write sent" assertions below).
    assert "CreateBucket" in recorder.writes and "PutObjectLockConfiguration" in recorder.writes

    seen = observe(provider, bucket)
    assert without_nulls(seen) == without_nulls(want)
    assert seen["encryption"] is None and seen["accessLogging"] is None  # not declared, not there

    # The store itself holds what was asked.
    lock = raw.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock == {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 2}}}
    assert raw.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

    # No perpetual diff: converging the same spec again sends no write at all.
    recorder.clear()
    again = asyncio.run(provider.update(ResourceRef("ArchiveBucket", NAME, bucket), want))
    assert recorder.writes == []
    assert without_nulls(provider.normalise(again.attributes)) == without_nulls(want)


def test_rgw_refuses_uploads_into_a_bucket_with_public_access_blocked(
    provider: ArchiveBucketProvider, raw: Any
) -> None:
    """Measured RGW 16.2 behaviour, recorded so a fixed RGW turns this red: BlockPublicAcls
    makes the gateway refuse the owner's plain PutObject (AWS allows it: no ACL is sent)."""
    bucket = unique_bucket_name("recon-worm-blocked")
    asyncio.run(provider.create(NAME, expand(provider, spec(bucket))))
    assert observe(provider, bucket)["publicAccess"] == "blocked"
    assert answer(lambda: raw.put_object(Bucket=bucket, Key="call.opus", Body=b"x")) == REFUSED


@pytest.mark.xfail(
    strict=True,
    raises=AccessDeniedError,
    reason="measured: RGW 16.2 answers AccessDenied 403 to any PutBucketPolicy while BlockPublicPolicy is on",
)
def test_readers_with_public_access_blocked(provider: ArchiveBucketProvider) -> None:
    bucket = unique_bucket_name("recon-worm-readers")
    want = expand(provider, spec(bucket, readers=[READER]))
    asyncio.run(provider.create(NAME, want))
    assert without_nulls(observe(provider, bucket)) == without_nulls(want)


# ---- 2. every change recon classifies FORBIDDEN --------------------------------------------------


@dataclass(frozen=True)
class World:
    """A bucket recon created (COMPLIANCE, default retention 2d) holding one version that the
    default rule locked, and recon's observation of it."""

    bucket: str
    version: ObjectVersion
    until: dt.datetime
    before: Attributes

    @property
    def ref(self) -> ResourceRef:
        return ResourceRef("ArchiveBucket", NAME, self.bucket)


def arrange(provider: ArchiveBucketProvider, raw: Any) -> World:
    bucket = unique_bucket_name("recon-worm-forbid")
    asyncio.run(provider.create(NAME, expand(provider, spec(bucket, **WRITABLE))))
    version = put_version(raw, bucket)  # no lock headers: the bucket's COMPLIANCE rule applies
    retention = raw.get_object_retention(**version.ref())["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    before = observe(provider, bucket)
    return World(bucket, version, retention["RetainUntilDate"], before)


def live(raw: Any, world: World) -> dict[str, Any]:
    """The bucket's live configuration and the locked version's state, read with raw boto3."""
    b = world.bucket
    return {
        "location": raw.get_bucket_location(Bucket=b).get("LocationConstraint"),
        "lock": raw.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"],
        "versioning": raw.get_bucket_versioning(Bucket=b).get("Status"),
        "publicAccess": answer(lambda: raw.get_public_access_block(Bucket=b)).code,
        "policy": answer(lambda: raw.get_bucket_policy(Bucket=b)).code,
        "tags": raw.get_bucket_tagging(Bucket=b)["TagSet"],
        "version": version_exists(raw, world.version),
        "retention": raw.get_object_retention(**world.version.ref())["Retention"],
    }


# -- the provider calls that would carry a change

Carry = Callable[[ArchiveBucketProvider, World, Attributes], Any]


def update(provider: ArchiveBucketProvider, world: World, after: Attributes) -> Any:
    return asyncio.run(provider.update(world.ref, after))


def delete(provider: ArchiveBucketProvider, world: World, after: Attributes) -> Any:
    return asyncio.run(provider.delete(world.ref))


# -- the changes (before → after, manifest shape as recon observed it)


def lock(mode: str, retention: str) -> Callable[[Attributes], Attributes]:
    return lambda before: {**before, "objectLock": {"mode": mode, "defaultRetention": retention}}


def lock_removed(before: Attributes) -> Attributes:
    return {k: v for k, v in before.items() if k != "objectLock"}


def versioning_suspended(before: Attributes) -> Attributes:
    return {**before, "versioning": "Suspended"}


def renamed(before: Attributes) -> Attributes:
    return {**before, "bucketName": f"{before['bucketName']}-new"}


def moved(before: Attributes) -> Attributes:
    return {**before, "region": "eu-west-1"}


def removed(before: Attributes) -> None:
    return None


# -- the raw requests to the store


def days_from_now(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def default_rule(mode: str, days: int) -> Callable[[Any, World], Any]:
    """PutObjectLockConfiguration with a new default rule (applies to FUTURE uploads only)."""

    def call(s3: Any, world: World) -> Any:
        config = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}}
        return s3.put_object_lock_configuration(Bucket=world.bucket, ObjectLockConfiguration=config)

    return call


def lock_configuration(config: dict[str, Any]) -> Callable[[Any, World], Any]:
    return lambda s3, world: s3.put_object_lock_configuration(Bucket=world.bucket, ObjectLockConfiguration=config)


def version_retention(mode: str, until: Callable[[World], dt.datetime]) -> Callable[[Any, World], Any]:
    return lambda s3, world: s3.put_object_retention(
        **world.version.ref(), Retention={"Mode": mode, "RetainUntilDate": until(world)}
    )


def shorter(world: World) -> dt.datetime:
    return world.until - dt.timedelta(days=1)


def longer(world: World) -> dt.datetime:
    return world.until + dt.timedelta(days=1)


def suspend_versioning(s3: Any, world: World) -> Any:
    return s3.put_bucket_versioning(Bucket=world.bucket, VersioningConfiguration={"Status": "Suspended"})


def delete_version(*, bypass: bool = False) -> Callable[[Any, World], Any]:
    extra = {"BypassGovernanceRetention": True} if bypass else {}
    return lambda s3, world: s3.delete_object(**world.version.ref(), **extra)


def delete_bucket(s3: Any, world: World) -> Any:
    return s3.delete_bucket(Bucket=world.bucket)


@dataclass(frozen=True)
class StoreRequest:
    """One raw request equivalent to the change, and what RGW answers (measured)."""

    what: str
    call: Callable[[Any, World], Any]
    expected: Answer


@dataclass(frozen=True)
class Case:
    action: Action
    after: Callable[[Attributes], Attributes | None]
    carry: tuple[Carry, ...]
    store: tuple[StoreRequest, ...] = field(default=())


OK = Answer("OK", 200)
DELETE_LOCKED = (
    StoreRequest("DeleteObject(VersionId) of the locked version", delete_version(), REFUSED),
    StoreRequest("... with x-amz-bypass-governance-retention", delete_version(bypass=True), REFUSED),
    StoreRequest("DeleteBucket", delete_bucket, Answer("BucketNotEmpty", 409)),
)

FORBIDDEN_CASES = [
    pytest.param(
        Case(
            Action.UPDATE,
            lock("COMPLIANCE", "1d"),
            (update,),
            (
                # S3 semantics: a shorter default rule only governs FUTURE uploads, so RGW (like
                # AWS) accepts it. recon still forbids it: recordings written from then on would
                # be kept shorter than the regulation (and the first promise) requires.
                StoreRequest(
                    "PutObjectLockConfiguration COMPLIANCE 1d (default rule)", default_rule("COMPLIANCE", 1), OK
                ),
                StoreRequest(
                    "PutObjectRetention shorter on the locked version",
                    version_retention("COMPLIANCE", shorter),
                    REFUSED,
                ),
            ),
        ),
        id="shorten-compliance-default-retention:store-accepts-shorter-rule-for-new-objects-refuses-shortening-a-version",
    ),
    pytest.param(
        Case(
            Action.UPDATE,
            lock("GOVERNANCE", RETENTION),
            (update,),
            (
                # Same S3 semantics: a GOVERNANCE default rule is accepted (future uploads only);
                # recon forbids it because those recordings could then be deleted early by
                # anyone holding s3:BypassGovernanceRetention.
                StoreRequest(
                    "PutObjectLockConfiguration GOVERNANCE 2d (default rule)", default_rule("GOVERNANCE", 2), OK
                ),
                StoreRequest(
                    "PutObjectRetention GOVERNANCE on the locked version",
                    version_retention("GOVERNANCE", longer),
                    REFUSED,
                ),
            ),
        ),
        id="compliance-to-governance:store-accepts-governance-rule-for-new-objects-refuses-it-on-a-version",
    ),
    pytest.param(
        Case(
            Action.UPDATE,
            lock_removed,
            (update,),
            (
                StoreRequest(
                    "ObjectLockEnabled=Disabled",
                    lock_configuration({"ObjectLockEnabled": "Disabled"}),
                    Answer("MalformedXML", 400),
                ),
                StoreRequest("empty ObjectLockConfiguration", lock_configuration({}), Answer("MalformedXML", 400)),
                # The nearest request RGW accepts: dropping the default rule (lock stays Enabled;
                # existing versions keep their retention, new uploads get none). recon reads
                # that as objectLock removed and forbids declaring it.
                StoreRequest(
                    "ObjectLockEnabled=Enabled without a rule", lock_configuration({"ObjectLockEnabled": "Enabled"}), OK
                ),
            ),
        ),
        id="disable-object-lock:store-has-no-request-to-turn-it-off",
    ),
    pytest.param(
        Case(
            Action.UPDATE,
            versioning_suspended,
            (update,),
            (StoreRequest("PutBucketVersioning Suspended", suspend_versioning, Answer("InvalidBucketState", 409)),),
        ),
        id="suspend-versioning:store-refuses",
    ),
    pytest.param(
        Case(Action.DELETE, removed, (delete,), DELETE_LOCKED),
        id="delete-bucket-holding-a-locked-version:store-refuses",
    ),
    pytest.param(
        # The engine carries a REPLACE as delete(old) then create(new); an in-place update is
        # refused too. S3 has no rename: the store's equivalent is deleting the old bucket.
        Case(Action.REPLACE, renamed, (update, delete), DELETE_LOCKED),
        id="change-bucketName-replace:no-rename-in-S3-store-refuses-the-delete",
    ),
    pytest.param(
        Case(Action.REPLACE, moved, (update, delete), DELETE_LOCKED),
        id="change-region-replace:no-move-in-S3-store-refuses-the-delete",
    ),
]


@pytest.mark.parametrize("case", FORBIDDEN_CASES)
def test_forbidden_change_is_never_sent_and_the_store_refuses_it(
    provider: ArchiveBucketProvider,
    recorder: CallRecorder,
    raw: Any,
    case: Case,
    record_property: Callable[[str, object], None],
) -> None:
    world = arrange(provider, raw)
    after = case.after(world.before)

    # (a) recon's classification
    verdict = provider.classify(ProposedChange("ArchiveBucket", NAME, case.action, world.before, after))
    assert verdict.safety is Safety.FORBIDDEN, verdict

    # (b) the provider refuses before sending anything; the live bucket is unchanged
    truth = live(raw, world)
    for carry in case.carry:
        recorder.clear()
        with pytest.raises(ArchiveRefusedError):
            carry(provider, world, dict(after or world.before))
        assert recorder.operations, "the hook saw no call at all"  # recon did read the bucket
        assert recorder.writes == [], f"recon sent {recorder.writes} for a refused change"
        record_property(f"reads_{carry.__name__}", len(recorder.operations))
    assert live(raw, world) == truth

    # (c) the store's own answer to the equivalent raw request(s)
    answers = []
    for request in case.store:
        got = answer(partial(request.call, raw, world))
        answers.append(f"{request.what}: {got}")
        assert got == request.expected, f"{request.what}: RGW answered {got}, the table says {request.expected}"
    record_property("rgw_answers", "; ".join(answers))
    # Whatever the bucket-level answers, the recording already written is untouched.
    assert version_exists(raw, world.version)
    retention = raw.get_object_retention(**world.version.ref())["Retention"]
    assert (retention["Mode"], retention["RetainUntilDate"]) == ("COMPLIANCE", world.until)


def test_an_allowed_change_is_sent(provider: ArchiveBucketProvider, recorder: CallRecorder, raw: Any) -> None:
    """The positive control for the table: a reversible change (tags) is classified so, sent,
    and held by the store."""
    world = arrange(provider, raw)
    after = {**world.before, "tags": {"desk": "eu-gas"}}
    verdict = provider.classify(ProposedChange("ArchiveBucket", NAME, Action.UPDATE, world.before, after))
    assert verdict.safety is Safety.REVERSIBLE
    recorder.clear()
    asyncio.run(provider.update(world.ref, after))
    assert recorder.writes == ["PutBucketTagging"]
    assert raw.get_bucket_tagging(Bucket=world.bucket)["TagSet"] == [{"Key": "desk", "Value": "eu-gas"}]


# ---- 3. legal holds block deletion ---------------------------------------------------------------


def recon_bucket(mode: str, retention: str) -> Callable[[ArchiveBucketProvider, Any], str]:
    def make(provider: ArchiveBucketProvider, raw: Any) -> str:
        bucket = unique_bucket_name("recon-worm-hold")
        lock_spec = {"mode": mode, "defaultRetention": retention}
        asyncio.run(provider.create(NAME, expand(provider, spec(bucket, objectLock=lock_spec, **WRITABLE))))
        return bucket

    return make


def lock_bucket_without_rule(provider: ArchiveBucketProvider, raw: Any) -> str:
    """recon never declares Object Lock without a default rule (the manifest needs mode and
    retention), and RGW cannot enable the lock on an existing bucket: made raw."""
    return new_lock_bucket(raw, prefix="recon-worm-hold")


HOLD_CASES = [
    # bucket, the delete tried after the hold is OFF, its answer
    pytest.param(
        lock_bucket_without_rule,
        False,
        Answer("OK", 204),
        id="lock-bucket-without-default-rule:off-then-delete-succeeds",
    ),
    pytest.param(
        recon_bucket("GOVERNANCE", "1d"),
        True,
        Answer("OK", 204),
        id="recon-governance-bucket:off-then-delete-with-bypass-succeeds",
    ),
    pytest.param(
        recon_bucket("COMPLIANCE", "1d"),
        True,
        REFUSED,
        id="recon-compliance-bucket:off-then-delete-still-refused-by-retention",
    ),
]


@pytest.mark.parametrize(("make_bucket", "bypass_after", "after_off"), HOLD_CASES)
def test_legal_hold_set_by_recon_blocks_deletion(
    provider: ArchiveBucketProvider,
    aws: AwsClient,
    raw: Any,
    make_bucket: Callable[[ArchiveBucketProvider, Any], str],
    bypass_after: bool,
    after_off: Answer,
) -> None:
    bucket = make_bucket(provider, raw)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    key = conversation_prefix("org-1", started, "conv-0001") + "audio.opus"
    version = put_version(raw, bucket, key)
    held = ArchivedVersion(version.key, version.version_id, "conv-0001")

    # ON through recon's own code (reconciler.providers.aws.object_holds), read back both ways.
    assert asyncio.run(set_holds(aws, bucket, REGION, [held], True)) == 1
    assert legal_hold_on(aws, bucket, REGION, held)
    assert raw.get_object_legal_hold(**version.ref())["LegalHold"]["Status"] == "ON"

    assert answer(lambda: raw.delete_object(**version.ref())) == REFUSED
    assert answer(lambda: raw.delete_object(**version.ref(), BypassGovernanceRetention=True)) == REFUSED
    assert version_exists(raw, version)
    # recon's own delete of the bucket is refused as well, naming the hold (or the retention).
    with pytest.raises(ArchiveRefusedError):
        asyncio.run(provider.delete(ResourceRef("ArchiveBucket", NAME, bucket)))
    assert version_exists(raw, version)

    # OFF through recon; then the delete is decided by retention alone.
    asyncio.run(set_holds(aws, bucket, REGION, [held], False))
    assert not legal_hold_on(aws, bucket, REGION, held)
    extra = {"BypassGovernanceRetention": True} if bypass_after else {}
    assert answer(lambda: raw.delete_object(**version.ref(), **extra)) == after_off
    assert version_exists(raw, version) == (after_off.code != "OK")
