"""Safety rules for ArchiveBucket changes, enforced by recon itself. Pure: no I/O.

S3 enforces most of these in COMPLIANCE mode, but S3-compatible emulators (the moto server
of the sandbox) accept shortening retention, weakening the mode and suspending versioning,
so recon judges every change before it is sent. `bucket_rules` judges a ProposedChange in
manifest shape (see reconciler.providers.aws.bucket_shape):

    delete or replace of a bucket with Object Lock        FORBIDDEN (deletes locked recordings)
    delete or replace of any other archive bucket         FORBIDDEN (deletes the recordings)
    bucketName or region changed in an update             FORBIDDEN (only possible as a replace)
    Object Lock removed                                   FORBIDDEN
    mode COMPLIANCE → GOVERNANCE                          FORBIDDEN
    COMPLIANCE default retention shortened                FORBIDDEN
    versioning Enabled → Suspended (or removed)           FORBIDDEN
    Object Lock enabled on an existing bucket             ONE_WAY
    mode GOVERNANCE → COMPLIANCE                          ONE_WAY
    COMPLIANCE default retention lengthened               ONE_WAY
    anything else (GOVERNANCE retention, encryption, readers, tags, logging ...) REVERSIBLE

Durations compare by length (7y = 365.25 d × 7, so 2557d is longer than 7y); an unreadable
one counts as shortened, the safe answer for a COMPLIANCE bucket.

Called by: ArchiveBucketProvider.classify, and its update (which refuses to send anything
these rules forbid).
"""

from __future__ import annotations

from typing import Any

from reconciler.durations import Duration
from reconciler.providers.base import Action, Classification, ProposedChange, Safety, strongest

Finding = tuple[Safety, str]


def classify_bucket(change: ProposedChange) -> Classification:
    """The safety class of `change` to an ArchiveBucket, with reasons in plain words."""
    return strongest(bucket_rules(change))


def bucket_rules(change: ProposedChange) -> list[Finding]:
    """Every rule `change` trips (see the module docstring); [] when it is reversible."""
    before_lock = _dig(change.before, "objectLock")
    bucket = _dig(change.before, "bucketName") or _dig(change.after, "bucketName") or change.name
    if change.action in (Action.DELETE, Action.REPLACE):
        return [_removal(change, str(bucket), before_lock is not None)]
    if change.action is not Action.UPDATE or change.before is None:
        return []
    found: list[Finding] = []
    for key, what in (("bucketName", "name"), ("region", "region")):
        old, new = _dig(change.before, key), _dig(change.after, key)
        if old is not None and old != new:
            found.append(
                (
                    Safety.FORBIDDEN,
                    f"the bucket's {what} cannot change in place ({old} → {new}); it would mean a new "
                    f"bucket and deleting {bucket} with the recordings it holds",
                )
            )
    found.extend(_lock_rules(_dig(change.after, "objectLock"), before_lock))
    found.extend(_versioning_rules(change))
    return found


def _removal(change: ProposedChange, bucket: str, locked: bool) -> Finding:
    verb = "Replacing" if change.action is Action.REPLACE else "Deleting"
    if locked:
        return (
            Safety.FORBIDDEN,
            f"{verb} bucket {bucket} would delete recordings under Object Lock; locked versions "
            "must stay until their retention ends",
        )
    return (
        Safety.FORBIDDEN,
        f"{verb} bucket {bucket} would delete the archived recordings it holds; recon never deletes an archive",
    )


def _lock_rules(after: Any, before: Any) -> list[Finding]:
    if before is not None and after is None:
        return [
            (
                Safety.FORBIDDEN,
                "Object Lock cannot be turned off once enabled; recordings already written must stay protected",
            )
        ]
    if before is None and after is not None:
        return [
            (
                Safety.ONE_WAY,
                "enabling Object Lock on an existing bucket cannot be undone: S3 never lets it be turned off again",
            )
        ]
    if before is None or after is None:
        return []
    before_mode, after_mode = _dig(before, "mode"), _dig(after, "mode")
    found: list[Finding] = []
    if before_mode == "COMPLIANCE" and after_mode != "COMPLIANCE":
        found.append(
            (
                Safety.FORBIDDEN,
                f"Object Lock mode cannot go from COMPLIANCE to {after_mode}: that would let people "
                "with special permissions delete recordings early",
            )
        )
    elif before_mode != "COMPLIANCE" and after_mode == "COMPLIANCE":
        found.append(
            (
                Safety.ONE_WAY,
                f"switching Object Lock from {before_mode} to COMPLIANCE cannot be undone: nobody, "
                "not even the account root, can weaken it again",
            )
        )
    if before_mode == "COMPLIANCE":
        old, new = _dig(before, "defaultRetention"), _dig(after, "defaultRetention")
        order = compare_durations(new, old)
        if order is None or order < 0:
            found.append(
                (
                    Safety.FORBIDDEN,
                    f"COMPLIANCE retention cannot be shortened ({old} → {new}): recordings must be "
                    "kept at least as long as first promised",
                )
            )
        elif order > 0:
            found.append(
                (
                    Safety.ONE_WAY,
                    f"lengthening COMPLIANCE retention ({old} → {new}) cannot be undone: it can never "
                    "be shortened again",
                )
            )
    return found


def _versioning_rules(change: ProposedChange) -> list[Finding]:
    before, after = _dig(change.before, "versioning"), _dig(change.after, "versioning")
    if before == "Enabled" and after != "Enabled":
        why = " on an Object Lock bucket" if _dig(change.before, "objectLock") is not None else ""
        return [
            (
                Safety.FORBIDDEN,
                f"versioning cannot be suspended{why}: overwrites would replace recordings instead "
                "of keeping every version",
            )
        ]
    return []


def compare_durations(after: Any, before: Any) -> int | None:
    """1, 0 or -1 as `after` is longer than, as long as, or shorter than `before` (absent
    counts as zero); None when either cannot be read."""
    if after == before:
        return 0
    try:
        after_ms = 0 if after is None else Duration.parse(str(after)).milliseconds
        before_ms = 0 if before is None else Duration.parse(str(before)).milliseconds
    except ValueError:
        return None
    return (after_ms > before_ms) - (after_ms < before_ms)


def _dig(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None
