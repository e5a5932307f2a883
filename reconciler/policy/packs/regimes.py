"""The four regime packs: mifid2, fca (SYSC 10A), cftc (1.35/1.31) and sec17a4.

The packs check the same things with each regime's own figures, so they are generated from
one table (`REGIMES`) and one set of check functions: every rule id is `<regime>.<check>`.
A RecordingPolicy opts into packs with `spec.regimes`; queues it covers and the archive it
exports to are checked against each regime it names.

Figures (see ../shared/REFERENCES.md §3): MiFID II and SYSC 10A keep 5 years (7 when the
authority asks) on a durable medium where the original cannot be altered; CFTC 1.35 keeps
oral communications 1 year (records 5) with authenticity and reliability, technology
neutral since 2017, so WORM is advised rather than required; SEC 17a-4 keeps 3 years on
WORM (or the audit-trail alternative, which recon does not model).

Called by: reconciler.policy (importing this module registers the rules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reconciler.durations import Duration
from reconciler.manifest.model import Resource
from reconciler.policy.findings import Finding, Rule, Severity, register
from reconciler.policy.view import EstateView, bucket_spec, policy_spec, retention_spec


@dataclass(frozen=True, slots=True)
class Regime:
    id: str
    title: str
    citation: str
    min_retention: Duration
    worm: Severity
    """How serious a missing WORM archive is under this regime."""
    internal_calls: Severity
    """How serious not recording internal calls always is."""
    note: str


REGIMES: dict[str, Regime] = {
    r.id: r
    for r in (
        Regime("mifid2", "MiFID II", "MiFID II Art 16(7); Delegated Regulation 2017/565 Art 76",
               Duration(5, "y"), Severity.ERROR, Severity.ERROR,
               "5 years, 7 if the competent authority requests it"),
        Regime("fca", "FCA SYSC 10A", "FCA Handbook SYSC 10A.1",
               Duration(5, "y"), Severity.ERROR, Severity.ERROR,
               "5 years, 7 if the FCA requests it"),
        Regime("cftc", "CFTC 1.35", "17 CFR 1.35(a) and 1.31",
               Duration(1, "y"), Severity.WARNING, Severity.WARNING,
               "1 year for oral communications leading to a trade"),
        Regime("sec17a4", "SEC 17a-4", "17 CFR 240.17a-4(b)(4) and (f)",
               Duration(3, "y"), Severity.ERROR, Severity.WARNING,
               "3 years, the first 2 easily accessible"),
    )
}  # fmt: skip

Check = Callable[[EstateView, Rule, Regime, Resource], Iterable[Finding]]


def _policies(view: EstateView, regime: Regime) -> Iterable[Resource]:
    return (p for p in view.policies.values() if regime.id in policy_spec(p).regimes)


def _retention_minimum(view: EstateView, rule: Rule, regime: Regime, policy: Resource) -> Iterable[Finding]:
    retention = view.retention_of(policy) or view.org_default_retention()
    if retention is None:
        return
    retain = retention_spec(retention).retain
    if retain < regime.min_retention:
        yield rule.finding(
            retention.address,
            f"retention {retain} is below the {regime.title} minimum of {regime.min_retention} "
            f"({regime.note}); {policy.address} applies {regime.title}",
            retention.location("spec", "retain"),
            "spec.retain",
        )


def _record_all(view: EstateView, rule: Rule, regime: Regime, policy: Resource) -> Iterable[Finding]:
    spec = policy_spec(policy)
    if not spec.enabled:
        yield rule.finding(
            policy.address,
            f"the policy is disabled, so nothing it covers is recorded under {regime.title}",
            policy.location("spec", "enabled"),
            "spec.enabled",
        )
    for direction in ("inbound", "outbound", "internal"):
        mode = getattr(spec.record, direction)
        if mode != "always":
            severity = regime.internal_calls if direction == "internal" else Severity.ERROR
            yield rule.finding(
                policy.address,
                f"{direction} calls are recorded '{mode}', but {regime.title} needs every {direction} "
                "call on a regulated line recorded, whatever the call flow does",
                policy.location("spec", "record", direction),
                f"spec.record.{direction}",
                severity=severity,
            )


def _own_retention(view: EstateView, rule: Rule, regime: Regime, policy: Resource) -> Iterable[Finding]:
    if policy_spec(policy).retention is None:
        queues = ", ".join(q.name for q in view.queues_of_policy.get(policy.name, [])) or "its queues"
        yield rule.finding(
            policy.address,
            f"no retention of its own: recordings of {queues} fall to the org-wide default, which "
            "anyone changing the default for other queues would shorten",
            policy.location("spec"),
            "spec.retention",
        )


def _archive_required(view: EstateView, rule: Rule, regime: Regime, policy: Resource) -> Iterable[Finding]:
    if policy_spec(policy).archive is None:
        yield rule.finding(
            policy.address,
            f"no archive: {regime.title} needs the recordings kept where the original cannot be altered "
            "or deleted, and the platform's own storage is mutable",
            policy.location("spec"),
            "spec.archive",
        )


def _bucket_check(
    test: Callable[[EstateView, Regime, Resource, Resource], tuple[str, str, tuple[str, ...]] | None],
) -> Check:
    """Wrap a test on (policy, bucket) that returns (message, field, location path) or None."""

    def check(view: EstateView, rule: Rule, regime: Regime, policy: Resource) -> Iterable[Finding]:
        bucket = view.archive_of(policy)
        if bucket is None:
            return
        outcome = test(view, regime, policy, bucket)
        if outcome is not None:
            message, field, path = outcome
            yield rule.finding(
                bucket.address,
                f"{message} ({policy.address} applies {regime.title})",
                bucket.location(*path),
                field,
            )

    return check


def _lock(
    view: EstateView, regime: Regime, policy: Resource, bucket: Resource
) -> tuple[str, str, tuple[str, ...]] | None:
    lock = bucket_spec(bucket).objectLock
    if lock is None:
        return (
            "Object Lock is off, so archived recordings can be altered or deleted",
            "spec.objectLock",
            ("spec",),
        )
    if lock.mode != "COMPLIANCE":
        return (
            f"Object Lock mode is {lock.mode}, which privileged users can bypass; WORM needs COMPLIANCE",
            "spec.objectLock.mode",
            ("spec", "objectLock", "mode"),
        )
    return None


def _lock_retention(
    view: EstateView, regime: Regime, policy: Resource, bucket: Resource
) -> tuple[str, str, tuple[str, ...]] | None:
    lock = bucket_spec(bucket).objectLock
    retention = view.retention_of(policy)
    if lock is None or retention is None:
        return None
    retain = retention_spec(retention).retain
    if lock.defaultRetention < retain:
        return (
            f"default retention {lock.defaultRetention} is shorter than the policy's retention {retain}, "
            "so archived recordings become deletable too early",
            "spec.objectLock.defaultRetention",
            ("spec", "objectLock", "defaultRetention"),
        )
    return None


def _kms(
    view: EstateView, regime: Regime, policy: Resource, bucket: Resource
) -> tuple[str, str, tuple[str, ...]] | None:
    if bucket_spec(bucket).encryption is None:
        return "no SSE-KMS encryption with a customer key", "spec.encryption", ("spec",)
    return None


def _public(
    view: EstateView, regime: Regime, policy: Resource, bucket: Resource
) -> tuple[str, str, tuple[str, ...]] | None:
    if bucket_spec(bucket).publicAccess != "blocked":
        return (
            "public access is allowed on a bucket of recordings",
            "spec.publicAccess",
            ("spec", "publicAccess"),
        )
    return None


def _logging(
    view: EstateView, regime: Regime, policy: Resource, bucket: Resource
) -> tuple[str, str, tuple[str, ...]] | None:
    spec = bucket_spec(bucket)
    if spec.accessLogging is None:
        return (
            "no server access logging, so reads of recordings leave no trail",
            "spec.accessLogging",
            ("spec",),
        )
    if spec.accessLogging.targetBucket == spec.bucketName:
        return (
            "access logs go to the bucket itself; a locked bucket cannot receive them and the trail "
            "must sit apart from what it records",
            "spec.accessLogging.targetBucket",
            ("spec", "accessLogging", "targetBucket"),
        )
    return None


def _metadata(
    view: EstateView, regime: Regime, policy: Resource, bucket: Resource
) -> tuple[str, str, tuple[str, ...]] | None:
    if not bucket_spec(bucket).metadataExport:
        return (
            "metadata export is off: audio without who, when and which conversation cannot be tied to a trade",
            "spec.metadataExport",
            ("spec", "metadataExport"),
        )
    return None


def _error(regime: Regime) -> Severity:
    return Severity.ERROR


def _worm(regime: Regime) -> Severity:
    return regime.worm


_CHECKS: tuple[tuple[str, str, str, Check, Callable[[Regime], Severity]], ...] = (
    ("retention-minimum", "Retention is at least the regime's minimum",
     "raise spec.retain of the RetentionPolicy to at least the regime's minimum (7y covers every regime)",
     _retention_minimum, _error),
    ("record-all-directions", "Inbound, outbound and internal calls are always recorded",
     "set spec.record.inbound, outbound and internal to always and keep the policy enabled; use flow logic only to stop recording for exempt calls",
     _record_all, _error),
    ("retention-own", "Regulated recordings have their own retention, not only the org-wide default",
     "set spec.retention to a RetentionPolicy made for this policy's queues",
     _own_retention, _error),
    ("archive-required", "Regulated recordings are exported to an immutable archive",
     "set spec.archive to an ArchiveBucket with Object Lock in COMPLIANCE mode",
     _archive_required, _worm),
    ("archive-object-lock", "The archive bucket has Object Lock in COMPLIANCE mode",
     "set spec.objectLock.mode: COMPLIANCE on the ArchiveBucket",
     _bucket_check(_lock), _worm),
    ("archive-retention", "The archive's default retention covers the policy's retention",
     "set spec.objectLock.defaultRetention to at least the policy's spec.retain",
     _bucket_check(_lock_retention), _error),
    ("archive-encryption", "The archive is encrypted with SSE-KMS and a customer key",
     "add spec.encryption.kmsKeyAlias: alias/NAME to the ArchiveBucket",
     _bucket_check(_kms), _error),
    ("archive-public-access", "The archive blocks all public access",
     "set spec.publicAccess: blocked on the ArchiveBucket",
     _bucket_check(_public), _error),
    ("archive-access-logging", "The archive logs access to a separate bucket",
     "add spec.accessLogging.targetBucket naming a separate log bucket",
     _bucket_check(_logging), _error),
    ("archive-metadata-export", "Each recording's metadata is exported beside it",
     "set spec.metadataExport: true on the ArchiveBucket",
     _bucket_check(_metadata), _error),
)  # fmt: skip


def _make_rule(
    regime: Regime, slug: str, title: str, remediation: str, check: Check, severity: Callable[[Regime], Severity]
) -> Rule:
    def run(view: EstateView, rule: Rule) -> Iterable[Finding]:
        for policy in _policies(view, regime):
            yield from check(view, rule, regime, policy)

    return Rule(
        id=f"{regime.id}.{slug}",
        pack=regime.id,
        severity=severity(regime),
        title=f"{regime.title}: {title}",
        remediation=remediation,
        check=run,
        citation=regime.citation,
    )


for _regime in REGIMES.values():
    for _slug, _title, _remediation, _check, _severity in _CHECKS:
        register(_make_rule(_regime, _slug, _title, _remediation, _check, _severity))
