"""Archive kinds: ArchiveBucket (an S3 bucket with Object Lock) and LegalHold.

ArchiveBucket declares the immutable store recordings are exported to. LegalHold declares a
matter's scope (users, queues, dates, search terms); it becomes deletion protection on the
platform and S3 legal holds on archived objects. A release needs approver, reason and
ticket, checked by the `recon` rule pack so the error names what is missing.

Called by: the kind registry (imported by reconciler.manifest.kinds).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, WithJsonSchema, model_validator

from reconciler.durations import Duration, DurationField
from reconciler.manifest.kinds.base import AwsRegion, FieldError, Model, Name, Reference, Spec, register_kind

BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_BUCKET_RE = re.compile(BUCKET_PATTERN)
_IP_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")


def _check_bucket(value: str) -> str:
    if not _BUCKET_RE.match(value) or ".." in value or _IP_RE.match(value):
        raise ValueError(
            f"'{value}' is not a valid S3 bucket name; use 3-63 lowercase letters, digits, "
            "'-' or '.', starting and ending with a letter or digit"
        )
    return value


BucketName = Annotated[
    str,
    AfterValidator(_check_bucket),
    WithJsonSchema({"type": "string", "pattern": BUCKET_PATTERN}),
]

ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$"
_ARN_RE = re.compile(ARN_PATTERN)


def _check_principal(value: str) -> str:
    if not _ARN_RE.match(value):
        raise ValueError(
            f"'{value}' is not an IAM role or user ARN; write e.g. arn:aws:iam::123456789012:role/compliance-reviewer"
        )
    return value


PrincipalArn = Annotated[
    str,
    AfterValidator(_check_principal),
    WithJsonSchema({"type": "string", "pattern": ARN_PATTERN}),
]


def _check_alias(value: str) -> str:
    if not re.match(r"^alias/[A-Za-z0-9/_-]{1,250}$", value) or value.startswith("alias/aws/"):
        raise ValueError(
            f"'{value}' is not a customer KMS key alias; write alias/NAME (AWS-managed "
            "alias/aws/* keys cannot be used for a compliance archive)"
        )
    return value


KmsAlias = Annotated[str, AfterValidator(_check_alias), WithJsonSchema({"type": "string", "pattern": "^alias/"})]


def _whole_days_or_years(value: Duration) -> Duration:
    if value.unit not in ("d", "y"):
        raise ValueError(f"S3 default retention is set in days or years; write e.g. 2555d or 7y, not {value}")
    if value.value < 1:
        raise ValueError("default retention must be at least 1d")
    return value


class ObjectLock(Model):
    mode: Literal["COMPLIANCE", "GOVERNANCE"]
    """COMPLIANCE: nobody, not even root, can shorten retention or delete a locked version."""
    defaultRetention: Annotated[DurationField, AfterValidator(_whole_days_or_years)]
    """Retention applied to every new object version, in days or years (e.g. 7y)."""


class Encryption(Model):
    kmsKeyAlias: KmsAlias
    """SSE-KMS key alias (e.g. alias/trading-recordings)."""
    createKey: StrictBool = False
    """Create the key and alias when they do not exist; otherwise they must exist."""


class AccessLogging(Model):
    targetBucket: BucketName
    """A separate bucket that receives server access logs (a lock bucket cannot log to itself)."""
    prefix: str = ""
    """Key prefix for the log objects (e.g. access/)."""


@register_kind(
    "ArchiveBucket",
    summary="An S3 bucket with Object Lock that holds recordings and their metadata immutably.",
)
class ArchiveBucketSpec(Spec):
    bucketName: BucketName
    """The S3 bucket name (globally unique)."""
    region: AwsRegion
    """The AWS region of the bucket; data-residency rules check it."""
    objectLock: ObjectLock | None = None
    """WORM settings. Regulated recording policies need COMPLIANCE mode."""
    encryption: Encryption | None = None
    """Server-side encryption with a customer KMS key."""
    publicAccess: Literal["blocked", "allowed"] = "blocked"
    """blocked turns on all four S3 public-access-block flags."""
    accessLogging: AccessLogging | None = None
    """Server access logging into a separate bucket."""
    readers: list[PrincipalArn] = Field(default_factory=list)
    """IAM principals granted read access; nobody else can read."""
    metadataExport: StrictBool = False
    """Export the _metadata.json (conversation, participants, times) beside each recording."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Bucket tags."""

    def references(self) -> Iterable[Reference]:
        if self.accessLogging is not None:
            yield Reference(
                "ArchiveBucket",
                self.accessLogging.targetBucket,
                ("accessLogging", "targetBucket"),
                key="bucketName",
                required=False,
            )


class HoldScope(Model):
    users: list[str] = Field(default_factory=list)
    """Users (e-mail) whose conversations are held."""
    queues: list[Name] = Field(default_factory=list)
    """Queues whose conversations are held."""
    from_: dt.date | None = Field(default=None, alias="from")
    """First day of the held period (inclusive)."""
    to: dt.date | None = None
    """Last day of the held period (inclusive)."""
    searchTerms: list[str] = Field(default_factory=list)
    """Phrases searched in transcripts; matching conversations are held."""

    @model_validator(mode="after")
    def _check(self) -> HoldScope:
        if not (self.users or self.queues or self.searchTerms or self.from_ or self.to):
            raise ValueError(
                "the scope is empty, which would hold nothing; name users, queues, searchTerms or a from/to period"
            )
        if self.from_ and self.to and self.from_ > self.to:
            raise FieldError(("from",), f"from ({self.from_}) is after to ({self.to}); swap them")
        return self


class HoldRelease(Model):
    approvedBy: str | None = None
    """Who approved the release (a named person, e.g. the general counsel)."""
    reason: str | None = None
    """Why the matter no longer needs the hold."""
    ticket: str | None = None
    """The ticket or matter reference that records the approval."""


@register_kind("LegalHold", summary="Conversations that must not be deleted while a matter is open.")
class LegalHoldSpec(Spec):
    matter: str = Field(min_length=1)
    """The matter or enquiry this hold serves (e.g. FCA enquiry 2026/017)."""
    scope: HoldScope
    """What is held: users, queues, a period and transcript search terms."""
    autoExtend: StrictBool = False
    """Pick up new conversations that enter the scope on later plans."""
    release: HoldRelease | None = None
    """Present only to release the hold; needs approvedBy, reason and ticket."""

    def references(self) -> Iterable[Reference]:
        for index, queue in enumerate(self.scope.queues):
            yield Reference("Queue", queue, ("scope", "queues", index))
