"""Recording kinds: RetentionPolicy, RecordingPolicy and Queue.

On Genesys Cloud a RecordingPolicy plus its RetentionPolicy become one media retention
policy whose conditions name the queues it covers; a Queue is a routing queue. A queue says
which recording policy covers it (`spec.recordingPolicy`); a policy may also list queues in
`spec.appliesTo.queues`. Either way the policy needs the queues to exist first.

Called by: the kind registry (imported by reconciler.manifest.kinds).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, WithJsonSchema, model_validator

from reconciler.durations import Duration, DurationField, between
from reconciler.manifest.kinds.base import (
    FieldError,
    GenesysRegion,
    Model,
    Name,
    Reference,
    Spec,
    register_kind,
)
from reconciler.manifest.kinds.text import Email, Key, Prose, identifier_check
from reconciler.manifest.regions import CLIENT_REGIONS

Regime = Literal["mifid2", "fca", "cftc", "sec17a4"]
RecordMode = Literal["always", "never", "flow"]
ClientRegion = Literal["EU", "UK", "US", "CH", "CA", "APAC", "LATAM", "MEA", "OTHER"]
assert set(CLIENT_REGIONS) == set(ClientRegion.__args__)  # type: ignore[attr-defined]
MAX_DESCRIPTION = 4000

KMS_KEY_PATTERN = (
    r"^(alias/[A-Za-z0-9/_-]{1,250}"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]{1,32}:[0-9]{12}:(key/[0-9a-f-]{1,64}|alias/[A-Za-z0-9/_-]{1,250})"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$"
)
KmsKey = Annotated[
    str,
    AfterValidator(
        identifier_check(
            KMS_KEY_PATTERN[1:-1],
            "a KMS key alias, ARN or id",
            "write alias/NAME, arn:aws:kms:REGION:ACCOUNT:key/ID or the key id",
        )
    ),
    WithJsonSchema({"type": "string", "pattern": KMS_KEY_PATTERN}),
]


MIN_RETENTION = Duration(1, "d")
MAX_RETENTION = Duration(100, "y")
"""The longest retention recon accepts: 100 years, as long as S3 Object Lock can keep an
archived copy (36,500 days or 100 years: see ArchiveBucket's objectLock). Genesys Cloud
counts a media retention policy's archive and delete periods in whole days (an int32 field,
ArchiveRetention.days / DeleteRetention.days) and documents no upper limit for call
recordings ("There are no upper limits for call recordings or digital recordings",
https://help.mypurecloud.com/articles/retention-period-for-analytics-data-and-recording/);
100 years is 36,525 days there."""
_RETENTION_BOUNDS = between(MIN_RETENTION, MAX_RETENTION)


@register_kind(
    "RetentionPolicy",
    summary="How long recordings are kept, and when they move to the archive tier.",
)
class RetentionPolicySpec(Spec):
    retain: Annotated[DurationField, AfterValidator(_RETENTION_BOUNDS)]
    """How long a recording must be kept from the end of the call (e.g. 7y; 1d to 100y)."""
    archiveAfter: Annotated[DurationField, AfterValidator(_RETENTION_BOUNDS)] | None = None
    """Move the recording to the archive tier after this long (e.g. 30d)."""
    deleteAfterRetention: StrictBool = True
    """Delete the recording once `retain` has passed (legal holds still override)."""
    orgDefault: StrictBool = False
    """This policy is the org-wide default, applied to recordings no other policy covers."""

    @model_validator(mode="after")
    def _archive_within_retention(self) -> RetentionPolicySpec:
        if self.archiveAfter is not None and self.archiveAfter > self.retain:
            raise FieldError(
                ("archiveAfter",),
                f"archiveAfter ({self.archiveAfter}) is longer than retain ({self.retain}); "
                "archive before the retention ends, or drop archiveAfter",
            )
        return self


class RecordDirections(Model):
    inbound: RecordMode
    """Calls from clients and counterparties: always, never, or flow (started by the call flow)."""
    outbound: RecordMode
    """Calls placed by traders."""
    internal: RecordMode
    """Calls between users of the org (order handling between colleagues is in scope for MiFID II)."""
    ivrNavigation: StrictBool = False
    """Also record IVR and menu navigation before a person answers."""


class PolicyScope(Model):
    queues: list[Name] = Field(default_factory=list)
    """Queues this policy covers, in addition to queues that name it in spec.recordingPolicy."""


@register_kind(
    "RecordingPolicy",
    summary="Which calls are recorded, under which regimes, kept how long and archived where.",
)
class RecordingPolicySpec(Spec):
    regimes: list[Regime]
    """Regulatory regimes whose rule packs apply: mifid2, fca, cftc, sec17a4. Empty: none."""
    record: RecordDirections
    """What is recorded, by call direction."""
    retention: Name | None = None
    """The RetentionPolicy for these recordings. Without it the org default applies."""
    archive: Name | None = None
    """The ArchiveBucket the recordings (and their metadata) are exported to."""
    encryptionKey: KmsKey | None = None
    """KMS key alias or ARN that encrypts the recordings (e.g. alias/trading-recordings)."""
    metadataKeys: list[Key] = Field(default_factory=list)
    """Conversation attribute keys exported with each recording (e.g. market_snapshot)."""
    appliesTo: PolicyScope = Field(default_factory=PolicyScope)
    """Queues covered by this policy (optional; queues may name the policy instead)."""
    enabled: StrictBool = True
    """A disabled policy records nothing; it stays declared so that plans show it."""

    def references(self) -> Iterable[Reference]:
        if self.retention is not None:
            yield Reference("RetentionPolicy", self.retention, ("retention",))
        if self.archive is not None:
            yield Reference("ArchiveBucket", self.archive, ("archive",))
        for index, queue in enumerate(self.appliesTo.queues):
            yield Reference("Queue", queue, ("appliesTo", "queues", index))


@register_kind("Queue", summary="A routing queue that trading calls arrive on, and how it must be recorded.")
class QueueSpec(Spec):
    regulated: StrictBool
    """Calls on this queue relate to orders and dealing and must be recorded."""
    recordingPolicy: Name | None = None
    """The RecordingPolicy that covers this queue."""
    region: GenesysRegion
    """The Genesys Cloud region of the org that hosts the queue (e.g. eu-west-1)."""
    clientRegion: ClientRegion
    """Where the clients on this queue are: drives data-residency rules (EU, UK, US, ...)."""
    members: list[Email] = Field(default_factory=list)
    """Users (e-mail) who take calls on the queue; on regulated queues each must be covered by
    exactly one capture-verification collector."""
    description: Annotated[Prose, Field(max_length=MAX_DESCRIPTION)] = ""
    """Free text shown on the platform (at most 4,000 characters)."""

    def references(self) -> Iterable[Reference]:
        if self.recordingPolicy is not None:
            yield Reference("RecordingPolicy", self.recordingPolicy, ("recordingPolicy",), direction="needed_by")
