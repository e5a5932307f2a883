"""ArchivedLegalHoldProvider against a real moto S3 server over HTTP (loopback, OS port).

The platform side is a minimal stub (below) that gives each hold a fixed set of
conversations, as the Genesys provider's expand would; what is under test is the archive
side: which object versions get an S3 legal hold, which never lose one, how observe reports
a lifted hold, how classify judges a narrowing, and how few S3 requests a plan makes.

Measured on moto 5.2.5: an object version under legal hold refuses
`DeleteObject(VersionId=...)` with AccessDenied, and `GetObjectLegalHold` on a version that
never had a hold answers an empty LegalHold (S3 answers NoSuchObjectLockConfiguration); both
read as OFF in recon.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import botocore.exceptions
import pytest
import requests
from moto_http import moto_server

from reconciler.providers.archive_holds import ArchivedLegalHoldProvider
from reconciler.providers.archive_layout import METADATA_FILE, conversation_prefix
from reconciler.providers.aws import AwsClient, AwsConfig
from reconciler.providers.base import (
    Action,
    Attributes,
    AttributeSchema,
    Attribution,
    Classification,
    ExpandContext,
    Observed,
    ProposedChange,
    Provider,
    ResourceRef,
    Safety,
    strongest,
)
from reconciler.providers.hold_safety import hold_rules, missing_release_fields

REGION = "eu-west-1"
TODAY = dt.date(2026, 11, 21)
ORG = "7a3c-org"
OTHER_ORG = "9b1d-org"
RELEASE = {"approvedBy": "General Counsel", "reason": "matter closed", "ticket": "LEGAL-42"}
_names = itertools.count()

# Conversation → (org folder, start): two months of the hold's period, one outside it.
STARTS = {
    "c-jul-a": (ORG, dt.datetime(2026, 7, 3, 10, 15, tzinfo=dt.UTC)),
    "c-jul-b": (ORG, dt.datetime(2026, 7, 20, 23, 59, tzinfo=dt.UTC)),
    "c-aug-a": (ORG, dt.datetime(2026, 8, 5, 8, 0, tzinfo=dt.UTC)),
    "c-aug-other-org": (OTHER_ORG, dt.datetime(2026, 8, 6, 9, 0, tzinfo=dt.UTC)),
    "c-aug-unheld": (ORG, dt.datetime(2026, 8, 9, 14, 0, tzinfo=dt.UTC)),
    "c-sep-late": (ORG, dt.datetime(2026, 9, 2, 7, 30, tzinfo=dt.UTC)),
}
VERSIONS = {"c-jul-a": 2, "c-aug-a": 3}
"""Conversations whose audio was exported more than once (object versions)."""
SCOPE = {"users": ["ahmed.khan@acme.example"], "from": "2026-07-01", "to": "2026-08-31"}
IN_SCOPE = ["c-jul-a", "c-jul-b", "c-aug-a", "c-aug-other-org", "c-never-archived"]


class StubPlatformHolds:
    """The platform side of LegalHold: `conversations` from a fixed table (empty when
    released), observe = what was recorded, writes recorded in `writes`."""

    kind = "LegalHold"
    schema = AttributeSchema(set_paths=frozenset({("conversations",)}), exportable=False)

    def __init__(self, conversations: Mapping[str, Sequence[str]]) -> None:
        self.conversations = {name: list(ids) for name, ids in conversations.items()}
        self.writes: list[tuple[str, str]] = []

    async def expand(self, desired: Mapping[str, Attributes], context: ExpandContext) -> dict[str, Attributes]:
        out: dict[str, Attributes] = {}
        for name, spec in desired.items():
            attributes = copy.deepcopy(dict(spec))
            is_released = missing_release_fields(attributes) == []
            attributes["conversations"] = [] if is_released else sorted(self.conversations.get(name, []))
            out[name] = attributes
        return out

    async def observe_all(self, refs: Sequence[ResourceRef]) -> dict[str, Observed]:
        return {
            r.address: Observed(self.kind, r.name, f"legalhold:{r.name}", dict(r.recorded)) for r in refs if r.recorded
        }

    async def discover(self) -> list[Observed]:
        return []

    async def attribute(self, refs: Sequence[ResourceRef]) -> dict[str, Attribution]:
        return {}

    async def create(self, name: str, attributes: Attributes) -> Observed:
        self.writes.append(("create", name))
        return Observed(self.kind, name, f"legalhold:{name}", copy.deepcopy(attributes))

    async def update(self, ref: ResourceRef, attributes: Attributes) -> Observed:
        self.writes.append(("update", ref.name))
        return Observed(self.kind, ref.name, f"legalhold:{ref.name}", copy.deepcopy(attributes))

    async def delete(self, ref: ResourceRef) -> None:
        self.writes.append(("delete", ref.name))

    def normalise(self, attributes: Attributes) -> Attributes:
        return copy.deepcopy(attributes)

    def classify(self, change: ProposedChange) -> Classification:
        return strongest(hold_rules(change))

    async def aclose(self) -> None:
        return None


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


def s3(client: AwsClient) -> Any:
    return client.s3(REGION)


def lock_bucket(client: AwsClient) -> str:
    """A bucket with Object Lock holding the exported recordings of STARTS (audio +
    _metadata.json per conversation, VERSIONS audio versions for some) and two strays."""
    bucket = f"rec-holds-{next(_names):04d}"
    raw = s3(client)
    raw.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}, ObjectLockEnabledForBucket=True
    )
    for conversation, (org, started) in STARTS.items():
        folder = conversation_prefix(org, started, conversation)
        for round_ in range(VERSIONS.get(conversation, 1)):
            raw.put_object(Bucket=bucket, Key=f"{folder}recording.opus", Body=f"audio {round_}".encode())
        raw.put_object(Bucket=bucket, Key=f"{folder}{METADATA_FILE}", Body=b'{"conversationId": "x"}')
    raw.put_object(Bucket=bucket, Key=f"{ORG}/year=2026/month=07/notes.txt", Body=b"not a recording")
    return bucket


def all_versions(client: AwsClient, bucket: str) -> list[tuple[str, str]]:
    page = s3(client).list_object_versions(Bucket=bucket)
    return [(v["Key"], v["VersionId"]) for v in page.get("Versions") or []]


def held_status(client: AwsClient, bucket: str) -> dict[str, set[str]]:
    """Conversation (or stray key) → the legal-hold statuses of its versions."""
    out: dict[str, set[str]] = {}
    for key, version in all_versions(client, bucket):
        answer = s3(client).get_object_legal_hold(Bucket=bucket, Key=key, VersionId=version)
        status = (answer.get("LegalHold") or {}).get("Status", "OFF")
        conversation = key.split("conversation_id=")[1].split("/")[0] if "conversation_id=" in key else key
        out.setdefault(conversation, set()).add(status)
    return out


def held(client: AwsClient, bucket: str) -> set[str]:
    return {c for c, statuses in held_status(client, bucket).items() if statuses == {"ON"}}


def bucket_spec(bucket: str, *, lock: bool = True) -> Attributes:
    return {
        "bucketName": bucket,
        "region": REGION,
        "objectLock": {"mode": "COMPLIANCE", "defaultRetention": "7y"} if lock else None,
    }


def hold_spec(scope: Mapping[str, Any] = SCOPE, release: Mapping[str, str] | None = None) -> Attributes:
    spec: Attributes = {"matter": "FCA enquiry 2026/017", "scope": dict(scope), "autoExtend": True, "release": None}
    if release is not None:
        spec["release"] = dict(release)
    return spec


class Harness:
    """The engine's calls to one provider: expand, observe, create/update with state."""

    def __init__(self, provider: ArchivedLegalHoldProvider, buckets: Sequence[Attributes]) -> None:
        self.provider = provider
        self.buckets = {f"archive-{i}": b for i, b in enumerate(buckets)}
        self.state: dict[str, Attributes] = {}

    def expand(self, holds: Mapping[str, Attributes]) -> dict[str, Attributes]:
        context = ExpandContext({"ArchiveBucket": self.buckets, "LegalHold": dict(holds)}, dict(self.state))
        expanded = asyncio.run(self.provider.expand(holds, context))
        return {name: self.provider.normalise(attributes) for name, attributes in expanded.items()}

    def observe(self, name: str) -> Attributes | None:
        ref = ResourceRef("LegalHold", name, f"legalhold:{name}", self.state.get(name))
        found = asyncio.run(self.provider.observe_all([ref])).get(ref.address)
        return None if found is None else self.provider.normalise(found.attributes)

    def apply(self, name: str, attributes: Attributes) -> Observed:
        if name in self.state:
            ref = ResourceRef("LegalHold", name, f"legalhold:{name}", self.state[name])
            observed = asyncio.run(self.provider.update(ref, attributes))
        else:
            observed = asyncio.run(self.provider.create(name, attributes))
        self.state[name] = copy.deepcopy(attributes)
        return observed

    def classify(self, name: str, after: Attributes) -> Classification:
        change = ProposedChange("LegalHold", name, Action.UPDATE, self.state[name], after)
        return self.provider.classify(change)


def harness(client: AwsClient, conversations: Mapping[str, Sequence[str]], *buckets: Attributes) -> Harness:
    return Harness(ArchivedLegalHoldProvider(StubPlatformHolds(conversations), client, today=TODAY), buckets)


def listed_prefixes(client: AwsClient) -> list[tuple[str, str]]:
    """Record every S3 listing the client makes from now on: (operation, Prefix)."""
    seen: list[tuple[str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name.startswith("List"):
            seen.append((model.name, str(params.get("Prefix", ""))))

    s3(client).meta.events.register("provide-client-params.s3.*", record)
    return seen


def test_it_is_a_provider_whose_schema_treats_archived_lists_as_sets(client: AwsClient) -> None:
    provider = ArchivedLegalHoldProvider(StubPlatformHolds({}), client, today=TODAY)
    assert isinstance(provider, Provider)
    assert ("archived", "*") in provider.schema.set_paths
    assert ("conversations",) in provider.schema.set_paths, "the platform's schema is kept"
    assert provider.normalise({"archived": {"b": ["z", "a", "a"], "empty": []}}) == {"archived": {"b": ["a", "z"]}}
    assert provider.normalise({"conversations": [], "archived": {}}) == {"conversations": []}, (
        "empty is absent: a hold recorded before archive holds existed is not drift"
    )


def test_expand_finds_the_archived_conversations_in_scope_listing_only_the_period(client: AwsClient) -> None:
    bucket = lock_bucket(client)
    h = harness(client, {"matter": IN_SCOPE}, bucket_spec(bucket))
    listings = listed_prefixes(client)
    before = client.requests
    desired = h.expand({"matter": hold_spec()})["matter"]
    assert desired["archived"] == {bucket: ["c-aug-a", "c-aug-other-org", "c-jul-a", "c-jul-b"]}, (
        "in scope and archived; c-never-archived has no object, c-aug-unheld is not in the hold"
    )
    assert sorted(listings) == sorted(
        [
            ("ListObjectsV2", ""),
            *[("ListObjectVersions", f"{org}/year=2026/month={m}/") for org in (ORG, OTHER_ORG) for m in ("07", "08")],
        ]
    ), "the org folders once, then the period's month folders: never the whole bucket"
    assert client.requests - before == 1 + 2 * 2
    assert desired["conversations"] == sorted(IN_SCOPE), "the platform's attributes are kept"


@pytest.mark.parametrize(
    ("scope", "months"),
    [
        pytest.param({"from": "2026-08-10", "to": "2026-08-10"}, ["08"], id="one-day-lists-one-month"),
        pytest.param({"from": "2026-07-01"}, ["07", "08", "09", "10", "11"], id="open-to-lists-up-to-today"),
        pytest.param({"users": ["a@b.example"]}, None, id="no-from-lists-each-org-folder-whole"),
    ],
)
def test_the_period_decides_what_is_listed(client: AwsClient, scope: dict[str, Any], months: list[str] | None) -> None:
    bucket = lock_bucket(client)
    h = harness(client, {"matter": ["c-jul-a", "c-aug-a"]}, bucket_spec(bucket))
    listings = listed_prefixes(client)
    desired = h.expand({"matter": hold_spec(scope)})["matter"]
    versions = [prefix for op, prefix in listings if op == "ListObjectVersions"]
    if months is None:
        assert sorted(versions) == [f"{ORG}/", f"{OTHER_ORG}/"]
        assert desired["archived"] == {bucket: ["c-aug-a", "c-jul-a"]}
    else:
        assert sorted(versions) == sorted(f"{org}/year=2026/month={m}/" for org in (ORG, OTHER_ORG) for m in months)


def test_create_holds_every_version_in_scope_and_nothing_else_and_again_is_idempotent(client: AwsClient) -> None:
    bucket = lock_bucket(client)
    h = harness(client, {"matter": IN_SCOPE}, bucket_spec(bucket))
    desired = h.expand({"matter": hold_spec()})["matter"]
    observed = h.apply("matter", desired)
    assert observed.attributes["archived"] == desired["archived"]
    status = held_status(client, bucket)
    assert {c for c, s in status.items() if s == {"ON"}} == {"c-jul-a", "c-jul-b", "c-aug-a", "c-aug-other-org"}
    assert all(s == {"OFF"} for c, s in status.items() if c not in desired["archived"][bucket]), status
    assert len([k for k, _ in all_versions(client, bucket) if "c-aug-a" in k]) == 4, "3 audio versions + metadata"
    assert h.observe("matter") == desired, "a second plan is clean"

    again = h.apply("matter", h.expand({"matter": hold_spec()})["matter"])  # an update with nothing new
    assert again.attributes["archived"] == desired["archived"]
    assert held_status(client, bucket) == status
    assert asyncio.run(h.provider.create("matter", desired)).attributes["archived"] == desired["archived"]
    assert held_status(client, bucket) == status, "creating twice is harmless"


def test_one_version_lifted_by_hand_is_drift_and_update_repairs_it(client: AwsClient) -> None:
    bucket = lock_bucket(client)
    h = harness(client, {"matter": IN_SCOPE}, bucket_spec(bucket))
    desired = h.expand({"matter": hold_spec()})["matter"]
    h.apply("matter", desired)
    key, version = next((k, v) for k, v in all_versions(client, bucket) if "c-aug-a" in k and "recording" in k)
    s3(client).put_object_legal_hold(Bucket=bucket, Key=key, VersionId=version, LegalHold={"Status": "OFF"})
    h.expand({"matter": hold_spec()})
    live = h.observe("matter")
    assert live is not None
    assert live["archived"] == {bucket: ["c-aug-other-org", "c-jul-a", "c-jul-b"]}, "one version OFF: not held"
    h.apply("matter", desired)
    assert held(client, bucket) >= {"c-aug-a"}
    assert h.observe("matter") == desired


def test_update_adding_conversations_holds_only_the_new_ones_besides_the_old(client: AwsClient) -> None:
    bucket = lock_bucket(client)
    table = {"matter": ["c-jul-a"]}
    h = harness(client, table, bucket_spec(bucket))
    h.apply("matter", h.expand({"matter": hold_spec()})["matter"])
    assert held(client, bucket) == {"c-jul-a"}
    table["matter"] = ["c-jul-a", "c-aug-a"]
    h.provider.platform.conversations = table  # type: ignore[attr-defined]
    desired = h.expand({"matter": hold_spec()})["matter"]
    assert h.classify("matter", desired).safety is Safety.REVERSIBLE
    h.apply("matter", desired)
    assert held(client, bucket) == {"c-jul-a", "c-aug-a"}
    assert held_status(client, bucket)["c-jul-b"] == {"OFF"}


@pytest.mark.parametrize(
    "release",
    [
        pytest.param(None, id="no-release"),
        pytest.param({"approvedBy": "General Counsel", "reason": "closed"}, id="release-without-ticket"),
    ],
)
def test_losing_archived_conversations_without_an_approved_release_is_forbidden_and_never_lifts(
    client: AwsClient, release: dict[str, str] | None
) -> None:
    bucket = lock_bucket(client)
    table = {"matter": ["c-jul-a", "c-aug-a"]}
    h = harness(client, table, bucket_spec(bucket))
    h.apply("matter", h.expand({"matter": hold_spec()})["matter"])
    h.provider.platform.conversations = {"matter": ["c-jul-a"]}  # type: ignore[attr-defined]
    narrowed = h.expand({"matter": hold_spec(release=release)})["matter"]
    judged = h.classify("matter", narrowed)
    assert judged.safety is Safety.FORBIDDEN
    if release is None:
        assert "would let archived recordings of LegalHold/matter be deleted" in judged.reason
    h.apply("matter", narrowed)  # had the engine sent it anyway: the archive side never lifts
    assert held(client, bucket) == {"c-jul-a", "c-aug-a"}


def test_an_approved_release_lifts_only_what_no_other_hold_wants(client: AwsClient) -> None:
    bucket = lock_bucket(client)
    h = harness(client, {"matter": ["c-jul-a", "c-jul-b", "c-aug-a"], "other": ["c-jul-b"]}, bucket_spec(bucket))
    first = h.expand({"matter": hold_spec(), "other": hold_spec()})
    for name, attributes in first.items():
        h.apply(name, attributes)
    assert held(client, bucket) == {"c-jul-a", "c-jul-b", "c-aug-a"}
    releasing = h.expand({"matter": hold_spec(release=RELEASE), "other": hold_spec()})["matter"]
    assert "archived" not in releasing and releasing["conversations"] == [], "released: nothing archived is held"
    judged = h.classify("matter", releasing)
    assert judged.safety is Safety.ONE_WAY, "the platform's table: an approved release is one-way, not forbidden"
    h.apply("matter", releasing)
    assert held(client, bucket) == {"c-jul-b"}, "the other hold still wants c-jul-b"
    assert held_status(client, bucket)["c-jul-a"] == {"OFF"}
    assert h.observe("matter") == releasing


def test_buckets_that_cannot_hold_are_skipped(client: AwsClient) -> None:
    bucket = lock_bucket(client)
    plain = f"rec-plain-{next(_names):04d}"
    s3(client).create_bucket(Bucket=plain, CreateBucketConfiguration={"LocationConstraint": REGION})
    h = harness(
        client,
        {"matter": IN_SCOPE},
        bucket_spec("rec-not-created-yet"),
        bucket_spec(plain, lock=False),
        bucket_spec(bucket),
    )
    desired = h.expand({"matter": hold_spec()})["matter"]
    assert list(desired["archived"]) == [bucket], "a missing bucket holds nothing; one without Object Lock cannot"
    h.apply("matter", desired)
    assert held(client, bucket) == set(desired["archived"][bucket])
    assert h.observe("matter") == desired


def test_a_legal_hold_on_moto_blocks_deleting_the_version(client: AwsClient) -> None:
    bucket = lock_bucket(client)
    h = harness(client, {"matter": ["c-jul-a"]}, bucket_spec(bucket))
    h.apply("matter", h.expand({"matter": hold_spec()})["matter"])
    key, version = next((k, v) for k, v in all_versions(client, bucket) if "c-jul-a" in k)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        s3(client).delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied", "measured: moto enforces legal hold on delete"
    unheld_key, unheld_version = next((k, v) for k, v in all_versions(client, bucket) if "c-jul-b" in k)
    s3(client).delete_object(Bucket=bucket, Key=unheld_key, VersionId=unheld_version)


def test_observe_reads_each_candidate_version_once_per_plan(client: AwsClient) -> None:
    bucket = lock_bucket(client)
    h = harness(client, {"matter": IN_SCOPE}, bucket_spec(bucket))
    h.apply("matter", h.expand({"matter": hold_spec()})["matter"])
    before = client.requests
    h.expand({"matter": hold_spec()})
    listing = client.requests - before
    h.observe("matter")
    reads = client.requests - before - listing
    versions = len([k for k, _ in all_versions(client, bucket) if any(c in k for c in IN_SCOPE)])
    assert (listing, reads) == (1 + 2 * 2, versions), "observe reuses expand's listings: one GET per version"


def test_observe_without_an_expand_reads_the_recorded_buckets(client: AwsClient) -> None:
    """A hold in state but no longer declared (or a fresh process): only `recorded` says
    where to look; the bucket's region comes from S3."""
    bucket = lock_bucket(client)
    h = harness(client, {"matter": ["c-jul-a", "c-aug-a"]}, bucket_spec(bucket))
    desired = h.expand({"matter": hold_spec()})["matter"]
    h.apply("matter", desired)
    fresh = harness(client, {}, bucket_spec(bucket))
    fresh.state = h.state
    assert fresh.observe("matter") == desired
