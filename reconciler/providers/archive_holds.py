"""LegalHold on the platform *and* on the archive: S3 object legal holds for the archived
recordings of every conversation a hold covers.

`ArchivedLegalHoldProvider` wraps the platform's LegalHold provider (the Genesys one, which
computes `conversations` in `expand` and protects them from deletion) and adds one
attribute:

    archived: {bucketName: [conversationId, ...]}   # sorted; buckets with none left out

the hold's conversations that have at least one object version exported into that archive
bucket (layout: reconciler.providers.archive_layout). Buckets are the declared
ArchiveBuckets with Object Lock (legal holds need it) plus buckets the hold was applied to
before; a bucket that does not exist yet holds nothing. A released hold has `archived: {}`,
and `normalise` leaves an empty `archived` out (absent = empty, so holds applied before
this provider existed are not drift).

- expand: the platform's expand, then the archived subset per bucket, listing only the
  month folders of the hold's period (reconciler.providers.aws.object_holds).
- observe_all: the platform's observe, then per bucket the conversations (recorded ∪
  wanted) whose object versions are ALL under legal hold: one version OFF (someone lifted
  it by hand, or a new version arrived) and the conversation is not held. Never writes.
- create / update: the platform's write, then legal hold ON for every version of every
  conversation in `archived` (idempotent, batched); OFF only for conversations that left
  `archived` when the hold carries an approved release (hold_safety) and no other declared
  hold still wants them. Otherwise recon never turns a legal hold OFF.
- delete: the platform's delete only; the archive side never lifts a hold on delete (recon
  never deletes a LegalHold: the engine retains it).
- classify: the strongest of the platform's judgement and: conversations leaving
  `archived` without an approved release → FORBIDDEN.

Called by: reconciler.cli.targets (`providers_for`, wherever a target has both a platform
LegalHold provider and the AWS provider).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.providers.aws.client import AwsClient
from reconciler.providers.aws.object_holds import ArchivedVersion, ArchiveIndex, Period, read_holds, set_holds
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
from reconciler.providers.hold_safety import missing_release_fields

ARCHIVED = "archived"
Archived = dict[str, set[str]]
"""bucketName → conversation ids, while computing (sorted lists in attributes)."""


def archived_of(attributes: Mapping[str, Any] | None) -> Archived:
    """The `archived` attribute as sets (empty when absent or malformed)."""
    value = (attributes or {}).get(ARCHIVED)
    if not isinstance(value, Mapping):
        return {}
    return {str(bucket): set(map(str, ids)) for bucket, ids in value.items() if isinstance(ids, list | tuple | set)}


def as_attribute(archived: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Canonical `archived`: sorted lists, buckets with no conversation left out."""
    return {bucket: sorted(set(ids)) for bucket, ids in sorted(archived.items()) if ids}


def released(attributes: Mapping[str, Any] | None) -> bool:
    """The hold carries a release with approvedBy, reason and ticket."""
    return missing_release_fields(dict(attributes or {})) == []


def archive_rules(change: ProposedChange) -> list[tuple[Safety, str]]:
    """Archived conversations losing their legal hold need an approved release."""
    if change.action is not Action.UPDATE:
        return []
    before, after = archived_of(change.before), archived_of(change.after)
    leaving = sum(len(ids - after.get(bucket, set())) for bucket, ids in before.items())
    if not leaving or released(change.after):
        return []
    return [
        (
            Safety.FORBIDDEN,
            f"{leaving} archived conversation(s) would lose their S3 legal hold without an approved release: "
            f"that would let archived recordings of LegalHold/{change.name} be deleted",
        )
    ]


class ArchivedLegalHoldProvider:
    """LegalHold = the platform's hold + S3 object legal holds. See the module docstring."""

    kind = "LegalHold"

    def __init__(self, platform: Provider, client: AwsClient, *, today: dt.date | None = None) -> None:
        self.platform = platform
        self.client = client
        self.today = today or dt.datetime.now(dt.UTC).date()
        self.schema: AttributeSchema = dataclasses.replace(
            platform.schema, set_paths=platform.schema.set_paths | {(ARCHIVED, "*")}
        )
        self._index = ArchiveIndex(client)
        self._buckets: dict[str, str | None] = {}
        """Buckets to look in → their region (None: ask S3), from the last expand."""
        self._specs: dict[str, Attributes] = {}
        self._wanted: dict[str, Archived] = {}

    def new_pass(self) -> None:
        """Forget what an earlier pass read (registered as a ProviderSet pass hook): the
        listings, and the buckets and wanted conversations its expand found."""
        self._index = ArchiveIndex(self.client)
        self._buckets, self._specs, self._wanted = {}, {}, {}

    # -- reading --------------------------------------------------------------------------

    async def expand(self, desired: Mapping[str, Attributes], context: ExpandContext) -> dict[str, Attributes]:
        """The platform's expand plus `archived` (reads S3 listings only)."""
        self.new_pass()
        expanded = await self.platform.expand(desired, context)
        buckets: dict[str, str | None] = {}
        for spec in (context.estate.get("ArchiveBucket") or {}).values():
            if spec.get("bucketName") and spec.get("objectLock"):
                buckets[str(spec["bucketName"])] = str(spec["region"]) if spec.get("region") else None
        for recorded in context.recorded.values():
            for bucket in archived_of(recorded):
                buckets.setdefault(bucket, None)
        self._buckets = buckets
        self._specs = {name: copy.deepcopy(dict(attributes)) for name, attributes in expanded.items()}
        wanted = {
            name: set(map(str, attributes.get("conversations") or [])) if not released(attributes) else set()
            for name, attributes in expanded.items()
        }
        periods = {name: [Period.of(attributes.get("scope"), self.today)] for name, attributes in expanded.items()}
        found = await self._in_buckets(wanted, periods)
        self._wanted = found
        for name, attributes in expanded.items():
            attributes[ARCHIVED] = as_attribute(found.get(name, {}))
        return expanded

    async def _in_buckets(
        self, conversations: Mapping[str, set[str]], periods: Mapping[str, list[Period]]
    ) -> dict[str, Archived]:
        """Per hold, per bucket: which of its `conversations` have object versions there."""
        versions = await self._versions({b: self._buckets.get(b) for b in self._buckets}, conversations, periods)
        out: dict[str, Archived] = {name: {} for name in conversations}
        for (name, bucket), by_conversation in versions.items():
            if by_conversation:
                out[name][bucket] = set(by_conversation)
        return out

    async def _versions(
        self,
        buckets: Mapping[str, str | None],
        conversations: Mapping[str, set[str]],
        periods: Mapping[str, list[Period]],
        *,
        index: ArchiveIndex | None = None,
    ) -> dict[tuple[str, str], dict[str, list[ArchivedVersion]]]:
        """(hold, bucket) → conversation → its versions, for the wanted `conversations` of
        each hold; buckets concurrently, one bucket's holds in turn (they share listings)."""
        use = index or self._index

        async def one_bucket(bucket: str, known: str | None) -> dict[tuple[str, str], dict[str, list[ArchivedVersion]]]:
            result: dict[tuple[str, str], dict[str, list[ArchivedVersion]]] = {}
            if not any(conversations.values()):
                return result
            region = await use.region(bucket, known)
            if region is None:
                return result
            for name, wanted in conversations.items():
                if not wanted:
                    continue
                listed = await use.versions(bucket, region, periods.get(name) or [])
                if listed is None:  # the bucket does not exist (yet): nothing to hold
                    return result
                result[(name, bucket)] = {c: listed[c] for c in sorted(wanted & listed.keys())}
            return result

        merged: dict[tuple[str, str], dict[str, list[ArchivedVersion]]] = {}
        for part in await asyncio.gather(*(one_bucket(b, r) for b, r in buckets.items())):
            merged.update(part)
        return merged

    def _periods(self, name: str, *attribute_sets: Mapping[str, Any] | None) -> list[Period]:
        """Where a hold's conversations can be: the periods of its declared and recorded scopes."""
        sources = [self._specs.get(name), *attribute_sets]
        found = {Period.of(a.get("scope"), self.today) for a in sources if a}
        return sorted(found, key=lambda p: (p.first or dt.date.min, p.last))

    def _regions_for(self, *archived: Archived) -> dict[str, str | None]:
        names = set(self._buckets).union(*(set(a) for a in archived))
        return {bucket: self._buckets.get(bucket) for bucket in sorted(names)}

    async def observe_all(self, refs: Sequence[ResourceRef]) -> dict[str, Observed]:
        """The platform's observe; `archived` = per bucket the conversations (recorded ∪
        wanted) whose object versions are all under legal hold. Read-only."""
        found = await self.platform.observe_all(refs)
        candidates: dict[str, set[str]] = {}
        periods: dict[str, list[Period]] = {}
        buckets: dict[str, str | None] = {}
        for ref in refs:
            if ref.address not in found:
                continue
            recorded, wanted = archived_of(ref.recorded), self._wanted.get(ref.name, {})
            candidates[ref.name] = set().union(*recorded.values(), *wanted.values())
            periods[ref.name] = self._periods(ref.name, ref.recorded)
            buckets.update(self._regions_for(recorded, wanted))
        versions = await self._versions(buckets, candidates, periods)
        held = await self._held(versions)
        out: dict[str, Observed] = {}
        for address, observed in found.items():
            attributes = dict(observed.attributes)
            attributes[ARCHIVED] = as_attribute(held.get(observed.name, {}))
            out[address] = dataclasses.replace(observed, attributes=attributes)
        return out

    async def _held(
        self, versions: Mapping[tuple[str, str], Mapping[str, list[ArchivedVersion]]]
    ) -> dict[str, Archived]:
        """Per hold, per bucket, the conversations whose versions are all ON."""
        regions = {bucket: await self._index.region(bucket, self._buckets.get(bucket)) for _, bucket in versions}

        async def statuses(bucket: str) -> dict[tuple[str, str], bool]:
            unique = {
                (v.key, v.version_id): v
                for (_, b), by_conversation in versions.items()
                if b == bucket
                for listed in by_conversation.values()
                for v in listed
            }
            region = regions[bucket]
            if region is None or not unique:
                return {}
            ordered = list(unique.values())
            return dict(zip(unique, await read_holds(self.client, bucket, region, ordered), strict=True))

        bucket_names = sorted(regions)
        on = dict(zip(bucket_names, await asyncio.gather(*(statuses(b) for b in bucket_names)), strict=True))
        held: dict[str, Archived] = {}
        for (name, bucket), by_conversation in versions.items():
            ids = {
                conversation
                for conversation, listed in by_conversation.items()
                if listed and all(on[bucket].get((v.key, v.version_id), False) for v in listed)
            }
            held.setdefault(name, {})[bucket] = ids
        return held

    async def discover(self) -> list[Observed]:
        return await self.platform.discover()

    async def attribute(self, refs: Sequence[ResourceRef]) -> dict[str, Attribution]:
        """The platform's attribution (S3 legal-hold changes live in CloudTrail, not read)."""
        return await self.platform.attribute(refs)

    # -- writing --------------------------------------------------------------------------

    async def create(self, name: str, attributes: Attributes) -> Observed:
        """The platform's create, then legal hold ON for every archived version in scope."""
        observed = await self.platform.create(name, attributes)
        await self._converge(name, attributes, None)
        return self._with_archived(observed, attributes)

    async def update(self, ref: ResourceRef, attributes: Attributes) -> Observed:
        """The platform's update, then ON for every archived version in scope; OFF only for
        conversations that left `archived` under an approved release and no other hold."""
        observed = await self.platform.update(ref, attributes)
        await self._converge(ref.name, attributes, ref.recorded)
        return self._with_archived(observed, attributes)

    async def delete(self, ref: ResourceRef) -> None:
        """The platform's delete; S3 legal holds are never lifted on delete."""
        await self.platform.delete(ref)

    def _with_archived(self, observed: Observed, attributes: Attributes) -> Observed:
        result = dict(observed.attributes)
        result[ARCHIVED] = as_attribute(archived_of(attributes))
        return dataclasses.replace(observed, attributes=result)

    def _claimed_elsewhere(self, name: str, bucket: str) -> set[str]:
        return set().union(*(a.get(bucket, set()) for hold, a in self._wanted.items() if hold != name))

    async def _converge(self, name: str, attributes: Attributes, recorded: Attributes | None) -> None:
        wanted, before = archived_of(attributes), archived_of(recorded)
        may_release = released(attributes)
        turn_on = {bucket: ids for bucket, ids in wanted.items() if ids}
        turn_off = {
            bucket: ids - wanted.get(bucket, set()) - self._claimed_elsewhere(name, bucket)
            for bucket, ids in before.items()
            if may_release
        }
        turn_off = {bucket: ids for bucket, ids in turn_off.items() if ids}
        if not turn_on and not turn_off:
            return
        # A fresh listing: versions exported since the plan's read must be held too.
        index = ArchiveIndex(self.client)
        periods = self._periods(name, attributes, recorded)
        buckets = {b: self._buckets.get(b) for b in sorted(set(turn_on) | set(turn_off))}
        wanted_ids = {"on": set().union(*turn_on.values()), "off": set().union(*turn_off.values())}
        versions = await self._versions(buckets, wanted_ids, {"on": periods, "off": periods}, index=index)

        def chosen(side: str, bucket: str, ids: set[str]) -> list[ArchivedVersion]:
            listed = versions.get((side, bucket), {})
            return [v for conversation in sorted(ids & listed.keys()) for v in listed[conversation]]

        async def write(bucket: str) -> None:
            region = await index.region(bucket, buckets[bucket])
            if region is None:  # the bucket does not exist: nothing archived to hold
                return
            await set_holds(self.client, bucket, region, chosen("on", bucket, turn_on.get(bucket, set())), True)
            await set_holds(self.client, bucket, region, chosen("off", bucket, turn_off.get(bucket, set())), False)

        await asyncio.gather(*(write(bucket) for bucket in buckets))

    # -- pure -----------------------------------------------------------------------------

    def normalise(self, attributes: Attributes) -> Attributes:
        """The platform's normalisation; `archived` sorted, and left out when it holds
        nothing (absent and empty are the same: a state written before archive holds
        existed must not read as drift)."""
        result = self.platform.normalise(attributes)
        if ARCHIVED in result:
            archived = as_attribute(archived_of(result))
            if archived:
                result[ARCHIVED] = archived
            else:
                del result[ARCHIVED]
        return result

    def classify(self, change: ProposedChange) -> Classification:
        platform = self.platform.classify(change)
        return strongest([(platform.safety, platform.reason), *archive_rules(change)])

    async def aclose(self) -> None:
        """The platform provider's aclose; the shared AwsClient is closed by the set's owner."""
        await self.platform.aclose()
