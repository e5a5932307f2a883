"""ArchiveBucket ↔ an S3 bucket with Object Lock, SSE-KMS, a read-only policy and logging.

Attribute ↔ API mapping and normalisation: reconciler.providers.aws.bucket_shape. Safety
table: reconciler.providers.aws.bucket_safety (enforced here too: `create` and `update`
judge the change against the live bucket and refuse to send anything forbidden, because S3
emulators accept what S3 in COMPLIANCE mode would refuse).

A bucket's natural key is its name: the ref's id once recon recorded it, else `bucketName`
from the manifest (remembered by `expand`) or from the last apply (`ref.recorded`).

Called by: reconciler.providers.aws.provider (`aws_providers`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.providers.aws import bucket_io
from reconciler.providers.aws import bucket_shape as shape
from reconciler.providers.aws.bucket_safety import bucket_rules, classify_bucket
from reconciler.providers.aws.client import AwsClient
from reconciler.providers.aws.errors import ArchiveRefusedError, BucketNotFoundError, KmsAliasMissingError
from reconciler.providers.aws.kms import AliasIndex
from reconciler.providers.base import (
    Action,
    Attributes,
    AttributeSchema,
    Attribution,
    Classification,
    ExpandContext,
    Observed,
    ProposedChange,
    ResourceRef,
    Safety,
)

KIND = "ArchiveBucket"
ARCHIVE_SCHEMA = AttributeSchema(
    set_paths=frozenset({("readers",)}),
    replace_paths=frozenset({("bucketName",), ("region",)}),
    intent_paths=frozenset({("metadataExport",), ("encryption", "createKey")}),
)


class ArchiveBucketProvider:
    """ArchiveBucket on S3. See the module docstring."""

    kind = KIND
    schema = ARCHIVE_SCHEMA

    def __init__(self, client: AwsClient, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.client = client
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._wanted: dict[str, Attributes] = {}
        self._pass_aliases: AliasIndex | None = None
        self.alias_listings = 0
        """kms:ListAliases listings made by observe passes so far (one per region per pass)."""

    # -- reading -------------------------------------------------------------------------

    async def expand(self, desired: Mapping[str, Attributes], context: ExpandContext) -> dict[str, Attributes]:
        """The specs plus `versioning: Enabled` (every archive bucket is versioned; suspending
        it must show as drift); remembered so observe finds buckets by bucketName.

        A KMS alias the manifests name without `createKey` must exist: checked here, so the
        plan (not the apply) says which alias is missing. The aliases are listed once per
        region and the listing is reused by this pass's observe."""
        expanded = {name: {**spec, "versioning": "Enabled"} for name, spec in desired.items()}
        self._wanted = {name: dict(spec) for name, spec in expanded.items()}
        self._pass_aliases = AliasIndex(self.client)
        for spec in desired.values():
            encryption = spec.get("encryption") or {}
            alias, region = encryption.get("kmsKeyAlias"), str(spec.get("region") or self.client.config.region)
            if alias and not encryption.get("createKey"):
                names = await self.client.run(AliasIndex.names, self._pass_aliases, region)
                if alias not in names:
                    raise KmsAliasMissingError(str(alias), region, bucket=str(spec.get("bucketName", "")))
        return expanded

    def _intent(self, ref: ResourceRef) -> Mapping[str, Any]:
        return self._wanted.get(ref.name) or ref.recorded or {}

    def bucket_of(self, ref: ResourceRef) -> str:
        """The bucket `ref` names: its id, else the declared or recorded bucketName."""
        if ref.id:
            return ref.id
        name = self._intent(ref).get("bucketName")
        return str(name) if name else ref.name

    async def observe_all(self, refs: Sequence[ResourceRef]) -> dict[str, Observed]:
        """Every bucket of `refs` read concurrently (bounded by the client's pool); KMS
        aliases listed once per region for the whole pass. Missing buckets are left out."""
        if not refs:
            return {}
        aliases, self._pass_aliases = self._pass_aliases or AliasIndex(self.client), None
        reads = [
            self.client.run(bucket_io.read_bucket, self.client, self.bucket_of(ref), self._intent(ref), aliases)
            for ref in refs
        ]
        found: dict[str, Observed] = {}
        for ref, live in zip(refs, await asyncio.gather(*reads), strict=True):
            if live is not None:
                found[ref.address] = Observed(KIND, ref.name, str(live.attributes["bucketName"]), live.attributes)
        self.alias_listings += aliases.listings
        return found

    async def discover(self) -> list[Observed]:
        """Every bucket of the account, named by bucket name (for `recon export`)."""
        listing = await self.client.run(AwsClient.call, self.client.s3(), "list_buckets")
        names = [str(b["Name"]) for b in listing.get("Buckets") or []]
        refs = [ResourceRef(KIND, name, name) for name in names]
        observed = await self.observe_all(refs)
        drafts: list[Observed] = []
        for item in observed.values():
            attributes = {k: v for k, v in item.attributes.items() if k != "versioning"}
            drafts.append(Observed(KIND, item.name, item.id, attributes))
        return drafts

    async def attribute(self, refs: Sequence[ResourceRef]) -> dict[str, Attribution]:
        """Not attributed yet: who changed a bucket lives in CloudTrail, which recon does not read."""
        return {}

    # -- writing -------------------------------------------------------------------------

    async def create(self, name: str, attributes: Attributes) -> Observed:
        """Create the bucket and converge every configuration; when it exists (a retried or
        resumed apply), converge it instead: never a second bucket, never a forbidden write."""
        desired = self.normalise(attributes)
        bucket, region = str(desired["bucketName"]), str(desired["region"])
        live = await self._read(bucket, desired)
        if live is None:
            lock = bool(desired.get("objectLock"))
            await self.client.run(lambda: bucket_io.create_bucket(self.client, bucket, region, object_lock=lock))
            live = await self._read(bucket, desired)
            if live is None:
                raise BucketNotFoundError(
                    f"bucket {bucket} was created but cannot be read back",
                    action="s3:GetBucketLocation",
                    bucket=bucket,
                    next_step="run the apply again; if it persists, check the endpoint is consistent",
                    retryable=True,
                )
        return await self._converge(name, live, desired)

    async def update(self, ref: ResourceRef, attributes: Attributes) -> Observed:
        """Converge the attributes that differ; raises when the bucket does not exist or the
        change is forbidden."""
        desired = self.normalise(attributes)
        bucket = self.bucket_of(ref)
        live = await self._read(bucket, desired)
        if live is None:
            raise BucketNotFoundError(
                f"bucket {bucket} ({ref.address}) does not exist",
                action="s3:GetBucketLocation",
                bucket=bucket,
                next_step="it was deleted outside recon; run `recon plan` to plan its creation",
            )
        return await self._converge(ref.name, live, desired)

    async def delete(self, ref: ResourceRef) -> None:
        """Delete the bucket and its object versions, unless any version is still under
        retention or legal hold (refused, nothing deleted). Already gone is success."""
        bucket = self.bucket_of(ref)
        locked = await self.client.run(bucket_io.delete_bucket, self.client, bucket, self._clock())
        if locked is not None:
            raise ArchiveRefusedError(
                f"refusing to delete bucket {bucket} ({ref.address}): {locked}",
                action="s3:DeleteBucket",
                bucket=bucket,
                next_step="locked recordings must stay until their retention ends; keep the bucket declared",
            )

    async def _read(self, bucket: str, intent: Mapping[str, Any]) -> bucket_io.LiveBucket | None:
        return await self.client.run(bucket_io.read_bucket, self.client, bucket, intent, AliasIndex(self.client))

    async def _converge(self, name: str, live: bucket_io.LiveBucket, desired: Attributes) -> Observed:
        current = self.normalise(live.attributes)
        forbidden = [
            reason
            for safety, reason in bucket_rules(ProposedChange(KIND, name, Action.UPDATE, current, desired))
            if safety is Safety.FORBIDDEN
        ]
        bucket = str(current["bucketName"])
        if forbidden:
            raise ArchiveRefusedError(
                f"refusing to change bucket {bucket} ({KIND}/{name}): {'; '.join(forbidden)}",
                action="s3:PutBucketObjectLockConfiguration",
                bucket=bucket,
                next_step="change the manifest back to the live value; these changes are never sent",
            )
        source_arn = shape.bucket_arn(bucket, str(current["region"]))
        await self.client.run(lambda: bucket_io.converge(self.client, live, desired, log_source_arn=source_arn))
        after = await self._read(bucket, desired)
        if after is None:
            raise BucketNotFoundError(
                f"bucket {bucket} disappeared while recon was changing it",
                action="s3:GetBucketLocation",
                bucket=bucket,
                next_step="run `recon plan` to see what exists now",
            )
        return Observed(KIND, name, bucket, after.attributes)

    # -- pure ----------------------------------------------------------------------------

    def normalise(self, attributes: Attributes) -> Attributes:
        return shape.normalise(attributes)

    def classify(self, change: ProposedChange) -> Classification:
        return classify_bucket(change)

    async def aclose(self) -> None:
        """The shared client is closed by the ProviderSet's owner."""
