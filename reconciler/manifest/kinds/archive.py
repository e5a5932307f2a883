"""Archive kinds: ArchiveBucket (an S3 bucket with Object Lock) and LegalHold.

ArchiveBucket declares the immutable store recordings are exported to. LegalHold declares a
matter's scope (users, queues, dates, search terms); it becomes deletion protection on the
platform and S3 legal holds on archived objects. A release needs approver, reason and
ticket, checked by the `recon` rule pack so the error names what is missing.

Called by: the kind registry (imported by reconciler.manifest.kinds).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StrictBool, WithJsonSchema, model_validator

from reconciler.dates import DayField
from reconciler.durations import Duration, DurationField, shown
from reconciler.manifest.kinds.base import AwsRegion, FieldError, Model, Name, Reference, Spec, register_kind
from reconciler.manifest.kinds.text import Email, Line, Prose, identifier_check, line_check, text_problem

BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
_IP_RE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_bucket_form = identifier_check(
    BUCKET_PATTERN[1:-1],
    "a valid S3 bucket name",
    "use 3-63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit",
)


def _check_bucket(value: str) -> str:
    _bucket_form(value)
    if ".." in value or _IP_RE.fullmatch(value):
        raise ValueError(
            f"'{value}' is not a valid S3 bucket name; use 3-63 lowercase letters, digits, "
            "'-' or '.', starting and ending with a letter or digit (not '..', not an IP address)"
        )
    return value


BucketName = Annotated[
    str,
    AfterValidator(_check_bucket),
    WithJsonSchema({"type": "string", "pattern": BUCKET_PATTERN}),
]

ARN_PATTERN = r"^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]{1,512}$"
_check_principal = identifier_check(
    ARN_PATTERN[1:-1],
    "an IAM role or user ARN",
    "write e.g. arn:aws:iam::123456789012:role/compliance-reviewer",
)


PrincipalArn = Annotated[
    str,
    AfterValidator(_check_principal),
    WithJsonSchema({"type": "string", "pattern": ARN_PATTERN}),
]


ALIAS_PATTERN = r"^alias/[A-Za-z0-9/_-]{1,250}$"
_ALIAS_HINT = "write alias/NAME (AWS-managed alias/aws/* keys cannot be used for a compliance archive)"
_alias_form = identifier_check(ALIAS_PATTERN[1:-1], "a customer KMS key alias", _ALIAS_HINT)


def _check_alias(value: str) -> str:
    _alias_form(value)
    if value.startswith("alias/aws/"):
        raise ValueError(f"'{value}' is not a customer KMS key alias; {_ALIAS_HINT}")
    return value


KmsAlias = Annotated[str, AfterValidator(_check_alias), WithJsonSchema({"type": "string", "pattern": "^alias/"})]

MAX_TAGS = 50
_TAG_CHARACTERS = re.compile(r"[\w .:/=+@-]*")


def _tag_checker(what: str, low: int, high: int) -> AfterValidator:
    """S3 tag rules (Amazon S3 User Guide, "Categorizing your storage using tags"): letters,
    digits, spaces and + - = . _ : / @; keys 1-128 characters, values 0-256; no aws: keys."""

    def check(value: str) -> str:
        problem = text_problem(value) if value else None
        if problem is None and not low <= len(value) <= high:
            problem = f"it is {len(value)} characters long, S3 allows {low} to {high}"
        if problem is None and not _TAG_CHARACTERS.fullmatch(value):
            problem = "S3 allows only letters, digits, spaces and + - = . _ : / @"
        if problem is None and what == "key" and value.lower().startswith("aws:"):
            problem = "the aws: prefix is reserved for AWS"
        if problem is not None:
            raise ValueError(f"tag {what} {shown(value)}: {problem}")
        return value

    return AfterValidator(check)


TagKey = Annotated[str, _tag_checker("key", 1, 128)]
TagValue = Annotated[str, _tag_checker("value", 0, 256)]


OBJECT_LOCK_MAX = {"d": 36_500, "y": 100}
"""S3 Object Lock's bounds for a default retention period: 1 to 36,500 days or 1 to 100
years (Amazon S3 API reference, PutObjectLockConfiguration / DefaultRetention,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_DefaultRetention.html, and the S3 User
Guide's Object Lock retention periods; a larger value is refused by S3 with InvalidArgument)."""


def _whole_days_or_years(value: Duration) -> Duration:
    if value.unit not in OBJECT_LOCK_MAX:
        raise ValueError(f"S3 default retention is set in days or years; write e.g. 2555d or 7y, not {value}")
    if value.value < 1:
        raise ValueError("default retention must be at least 1d")
    if value.value > OBJECT_LOCK_MAX[value.unit]:
        raise ValueError(
            f"{value} is longer than S3 Object Lock allows (at most {OBJECT_LOCK_MAX['d']}d or {OBJECT_LOCK_MAX['y']}y)"
        )
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
    prefix: Annotated[str, AfterValidator(line_check("S3 key prefix", max_length=512))] = ""
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
    tags: Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS)] = Field(default_factory=dict)
    """Bucket tags (at most 50; keys 1-128 and values up to 256 characters, as S3 allows)."""

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
    users: list[Email] = Field(default_factory=list)
    """Users (e-mail) whose conversations are held."""
    queues: list[Name] = Field(default_factory=list)
    """Queues whose conversations are held."""
    from_: DayField | None = Field(default=None, alias="from")
    """First day of the held period (inclusive)."""
    to: DayField | None = None
    """Last day of the held period (inclusive); leave it out for a hold with no end."""
    searchTerms: list[Annotated[Line, Field(min_length=1)]] = Field(default_factory=list)
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
    approvedBy: Line | None = None
    """Who approved the release (a named person, e.g. the general counsel)."""
    reason: Prose | None = None
    """Why the matter no longer needs the hold."""
    ticket: Line | None = None
    """The ticket or matter reference that records the approval."""


@register_kind("LegalHold", summary="Conversations that must not be deleted while a matter is open.")
class LegalHoldSpec(Spec):
    matter: Line = Field(min_length=1)
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
